import type { IncomingMessage } from 'node:http';
import { CredproxyError } from '../errors.js';

/** The request's target, taken from the request line only: the Host header never decides where a credential goes. */
export interface Target {
  url: URL;
  /** lower-case, no trailing dot, IPv6 without brackets */
  hostname: string;
  /** undefined when the request used its scheme's default port */
  port: number | undefined;
  secure: boolean;
}

/** WebSocket upgrades may name their target as ws:// or wss://; they travel as http and https. */
const WEBSOCKET_SCHEMES: Record<string, string> = { 'ws:': 'http:', 'wss:': 'https:' };

export function parseTarget(rawUrl: string, opts: { websocket?: boolean } = {}): Target {
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    throw new CredproxyError('bad_request', 'the request target is not a valid absolute URL');
  }
  const asHttp = opts.websocket ? WEBSOCKET_SCHEMES[url.protocol] : undefined;
  if (asHttp) url = new URL(`${asHttp}${rawUrl.slice(url.protocol.length)}`);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new CredproxyError('bad_request', `the scheme ${url.protocol.slice(0, -1)} is not proxied; use http or https`);
  }
  // `http://user@host/` is a classic trick to make a target look like another host.
  if (url.username !== '' || url.password !== '' || (rawUrl.includes('@') && /^[a-z]+:\/\/[^/?#]*@/i.test(rawUrl))) {
    throw new CredproxyError('bad_request', 'the request target must not contain user information (user@host)');
  }
  let hostname = url.hostname;
  if (hostname.startsWith('[')) hostname = hostname.slice(1, -1);
  if (hostname.endsWith('.')) hostname = hostname.slice(0, -1);
  if (hostname === '') throw new CredproxyError('bad_request', 'the request target has no host');
  return { url, hostname, port: url.port === '' ? undefined : Number(url.port), secure: url.protocol === 'https:' };
}

/** Absolute-form (`GET http://host/path`) requests are proxy traffic; origin-form ones are for credproxy itself. */
export function isProxyRequest(req: IncomingMessage): boolean {
  const u = req.url ?? '';
  return !u.startsWith('/') && u !== '*';
}

/** A CONNECT tunnel that credproxy terminates: its target comes from the CONNECT line, never from inner Host headers. */
export interface TunnelContext {
  /** as in Target: lower-case, IPv6 without brackets */
  hostname: string;
  port: number;
  /** TLS was terminated (https), or the tunnel carries plain HTTP */
  secure: boolean;
  /** the CONNECT request's Proxy-Authorization: inner requests rarely repeat it */
  proxyAuthorization: string | undefined;
}

/**
 * The target of a request inside a tunnel: the tunnel's host and port with the inner
 * origin-form path. An absolute-form inner request is accepted only for the tunnel's own
 * host, so a tunnel to one host can never carry a request (and a credential) to another.
 */
export function tunnelTarget(tunnel: TunnelContext, rawUrl: string): Target {
  let pathAndQuery = rawUrl;
  if (!rawUrl.startsWith('/')) {
    const abs = parseTarget(rawUrl);
    const port = abs.port ?? (abs.secure ? 443 : 80);
    if (abs.hostname !== tunnel.hostname || port !== tunnel.port) {
      throw new CredproxyError('bad_request', `a request inside the tunnel to ${tunnel.hostname}:${tunnel.port} names another target`);
    }
    pathAndQuery = abs.url.pathname + abs.url.search;
  }
  const host = tunnel.hostname.includes(':') ? `[${tunnel.hostname}]` : tunnel.hostname;
  return parseTarget(`${tunnel.secure ? 'https' : 'http'}://${host}:${tunnel.port}${pathAndQuery}`);
}
