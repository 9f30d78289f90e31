import type { IncomingMessage } from 'node:http';
import { CredproxyError } from '../errors.js';

/** The request's target, taken from the request line only: the Host header never decides where a credential goes. */
export interface Target {
  /** as URL's `host`: the hostname as written in a URL (IPv6 in brackets), with the port unless it is the scheme's default */
  host: string;
  /** lower-case, no trailing dot, IPv6 without brackets */
  hostname: string;
  /** undefined when the request used its scheme's default port */
  port: number | undefined;
  /** as URL's `pathname` and `search`: normalised, percent-encoded, `?` included unless the query is empty */
  pathname: string;
  search: string;
  secure: boolean;
}

/** WebSocket upgrades may name their target as ws:// or wss://; they travel as http and https. */
const WEBSOCKET_SCHEMES: Record<string, string> = { 'ws:': 'http:', 'wss:': 'https:' };

export function parseTarget(rawUrl: string, opts: { websocket?: boolean } = {}): Target {
  return plainTarget(rawUrl) ?? urlTarget(rawUrl, opts);
}

/** The general case: WHATWG URL parsing, then the checks. */
function urlTarget(rawUrl: string, opts: { websocket?: boolean }): Target {
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
  return { host: url.host, hostname, port: url.port === '' ? undefined : Number(url.port), pathname: url.pathname, search: url.search, secure: url.protocol === 'https:' };
}

/*
 * The common case without `new URL` (a per-request cost the profile showed): an http(s)
 * target whose every part URL parsing would leave as it is. That is a lower-case ASCII DNS
 * name or a dotted-quad IPv4 address, a port without leading zeros, and a path and query of
 * characters that are never percent-encoded, with no dot segment and no fragment. Anything
 * else (upper case, IDNs, IPv6, user info, `%2e`, backslashes, spaces, `#`, ...) takes the
 * URL path, so both give the same answer; test/proxy/target.test.ts holds the two side by
 * side over every printable character.
 */
const HOST = 1;
const PATH = 2;
const QUERY = 4;
const CHARS = new Uint8Array(128);
for (const c of 'abcdefghijklmnopqrstuvwxyz0123456789-.') CHARS[c.charCodeAt(0)]! |= HOST;
for (const c of "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&()*+,;=:@/%") CHARS[c.charCodeAt(0)]! |= PATH | QUERY;
CHARS[39]! |= PATH; // ' is percent-encoded in a special URL's query, never in its path
CHARS[63]! |= QUERY; // ? within the query

const SLASH = 47;
const DOT = 46;
const COLON = 58;
const QUESTION = 63;
const PERCENT = 37;

export function plainTarget(raw: string): Target | undefined {
  let i: number;
  let secure: boolean;
  if (raw.startsWith('http://')) {
    i = 7;
    secure = false;
  } else if (raw.startsWith('https://')) {
    i = 8;
    secure = true;
  } else return undefined;
  const hostStart = i;
  while (i < raw.length && (CHARS[raw.charCodeAt(i)]! & HOST) !== 0) i++;
  const hostname = raw.slice(hostStart, i);
  if (!plainHostname(hostname)) return undefined;
  let port: number | undefined;
  let host = hostname;
  if (raw.charCodeAt(i) === COLON) {
    const portStart = ++i;
    let n = 0;
    for (let c = raw.charCodeAt(i); c >= 48 && c <= 57; c = raw.charCodeAt(++i)) n = n * 10 + (c - 48);
    const digits = i - portStart;
    if (digits === 0 || digits > 5 || raw.charCodeAt(portStart) === 48 || n > 65535) return undefined;
    if (n !== (secure ? 443 : 80)) {
      port = n;
      host = raw.slice(hostStart, i);
    }
  }
  if (raw.charCodeAt(i) !== SLASH) return undefined;
  const pathStart = i;
  for (; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c === QUESTION) break;
    if (c >= 128 || (CHARS[c]! & PATH) === 0) return undefined;
    // a dot segment (`/.`, `/..`) or an encoded dot: URL would rewrite the path
    if (c === DOT && raw.charCodeAt(i - 1) === SLASH) return undefined;
    if (c === PERCENT && raw.charCodeAt(i + 1) === 50 && (raw.charCodeAt(i + 2) | 0x20) === 101) return undefined;
  }
  const pathname = raw.slice(pathStart, i);
  const searchStart = i;
  for (i++; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c >= 128 || (CHARS[c]! & QUERY) === 0) return undefined;
  }
  // URL's search is '' for an empty query (`/path?`), as it is for none.
  const search = raw.length - searchStart > 1 ? raw.slice(searchStart) : '';
  return { host, hostname, port, pathname, search, secure };
}

/** A DNS name URL keeps as written (lower-case ASCII labels, no punycode to check), or a canonical dotted quad. */
function plainHostname(name: string): boolean {
  if (name === '' || name.charCodeAt(0) === DOT || name.charCodeAt(name.length - 1) === DOT || name.includes('..') || name.includes('xn--')) return false;
  const lastLabel = name.lastIndexOf('.') + 1;
  const first = name.charCodeAt(lastLabel);
  // A last label that starts with a digit makes URL read the name as an IPv4 address (in decimal, octal or hex).
  if (first < 48 || first > 57) return true;
  let parts = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i <= name.length; i++) {
    const c = i < name.length ? name.charCodeAt(i) : DOT;
    if (c === DOT) {
      // 0 to 255, no leading zero: anything else URL would rewrite, or refuse
      if (digits === 0 || value > 255 || (digits > 1 && name.charCodeAt(i - digits) === 48)) return false;
      parts++;
      value = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      value = value * 10 + (c - 48);
      if (++digits > 3) return false;
    } else return false;
  }
  return parts === 4;
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
    pathAndQuery = abs.pathname + abs.search;
  }
  const host = tunnel.hostname.includes(':') ? `[${tunnel.hostname}]` : tunnel.hostname;
  return parseTarget(`${tunnel.secure ? 'https' : 'http'}://${host}:${tunnel.port}${pathAndQuery}`);
}
