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

export function parseTarget(rawUrl: string): Target {
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    throw new CredproxyError('bad_request', 'the request target is not a valid absolute URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new CredproxyError('bad_request', `the scheme ${url.protocol.slice(0, -1)} is not proxied; use http or https`);
  }
  // `http://user@host/` is a classic trick to make a target look like another host.
  if (url.username !== '' || url.password !== '' || /^[a-z]+:\/\/[^/?#]*@/i.test(rawUrl)) {
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
