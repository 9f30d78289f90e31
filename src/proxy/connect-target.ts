import { isIPv6 } from 'node:net';
import { normalizeHostname } from '../config/hosts.js';
import { CredproxyError } from '../errors.js';

export interface ConnectTarget {
  /** lower-case, no trailing dot, IPv6 without brackets */
  hostname: string;
  port: number;
}

const BRACKETED = /^\[([^\]]+)\]:([0-9]+)$/;
const PLAIN = /^([^:[\]]+):([0-9]+)$/;

/**
 * The target of `CONNECT host:port` (RFC 9110 §9.3.6): strictly authority-form. Anything
 * else (a scheme, user information, a path, no port, a port out of range) is refused rather
 * than guessed at, since the host decides which credential may travel.
 */
export function parseConnectTarget(raw: string): ConnectTarget {
  if (/[/@?#\s\\]/.test(raw) || raw.includes('://')) {
    throw new CredproxyError('bad_request', `CONNECT target "${shown(raw)}" must be host:port (no scheme, user, path or query)`);
  }
  const m = BRACKETED.exec(raw) ?? PLAIN.exec(raw);
  if (!m) {
    throw new CredproxyError('bad_request', `CONNECT target "${shown(raw)}" must be host:port with a port (IPv6 in brackets: [::1]:443)`);
  }
  const [, rawHost = '', rawPort = ''] = m;
  const port = Number(rawPort);
  if (rawPort.length > 5 || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new CredproxyError('bad_request', `CONNECT target "${shown(raw)}" has a port out of range (1 to 65535)`);
  }
  if (raw.startsWith('[') && !isIPv6(rawHost)) {
    throw new CredproxyError('bad_request', `CONNECT target "${shown(raw)}": only an IPv6 address goes in brackets`);
  }
  const hostname = normalizeHostname(rawHost);
  if (!hostname) throw new CredproxyError('bad_request', `CONNECT target "${shown(raw)}" has no valid host name`);
  return { hostname, port };
}

/** Enough of a hostile target to recognise it, without echoing kilobytes back. */
function shown(raw: string): string {
  return JSON.stringify(raw.length > 100 ? `${raw.slice(0, 100)}…` : raw).slice(1, -1);
}
