import { lookup } from 'node:dns/promises';
import net, { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';
import { Agent, buildConnector } from 'undici';
import { CredproxyError } from '../errors.js';

type Address = ipaddr.IPv4 | ipaddr.IPv6;
export type Cidr = [Address, number];

/**
 * Ranges passthrough never reaches unless `egress.allow_private` lists them: everything that
 * is not the public internet (ipaddr.js names the ranges). A passthrough request is the one
 * place where a client picks the destination, so this is what keeps it away from the cloud
 * metadata service, the admin ports of the host and the private network behind credproxy.
 */
const DENIED_V4 = new Set(['unspecified', 'broadcast', 'multicast', 'linkLocal', 'loopback', 'carrierGradeNat', 'private', 'reserved']);
const DENIED_V6 = new Set(['unspecified', 'linkLocal', 'multicast', 'loopback', 'uniqueLocal', 'deprecatedSiteLocal', 'discard', 'teredo']);

/** Parses `egress.allow_private`; a bad entry is a config error already caught by the schema's shape check. */
export function parseCidrs(list: readonly string[]): Cidr[] {
  return list.map((c) => ipaddr.parseCIDR(c) as Cidr);
}

/** The IPv4 address an IPv6 one carries: mapped, compatible, SIIT (::ffff:0:a.b.c.d), NAT64 or 6to4. */
function embeddedV4(a: ipaddr.IPv6): ipaddr.IPv4 | undefined {
  const p = a.parts;
  const b = a.toByteArray();
  const range = a.range();
  const last32 = () => new ipaddr.IPv4(b.slice(12, 16));
  if (range === 'ipv4Mapped' || range === 'rfc6145' || range === 'rfc6052') return last32();
  if (range === '6to4') return new ipaddr.IPv4(b.slice(2, 6));
  // IPv4-compatible (::a.b.c.d, deprecated but still routed by some stacks); :: and ::1 are not.
  if (p.slice(0, 6).every((x) => x === 0) && (p[6] !== 0 || (p[7] ?? 0) > 1)) return last32();
  return undefined;
}

function listed(a: Address, allow: readonly Cidr[]): boolean {
  return allow.some(([net, bits]) => net.kind() === a.kind() && a.match(net, bits));
}

/**
 * Why an address may not be reached by passthrough, or undefined when it may. Works on the
 * parsed bytes, so every spelling of an address (`0x7f.1`, `2130706433`, `::ffff:7f00:1`)
 * lands on the same answer.
 */
export function deniedRange(address: string, allow: readonly Cidr[]): string | undefined {
  if (!ipaddr.isValid(address)) return 'not an IP address';
  const a = ipaddr.parse(address);
  if (listed(a, allow)) return undefined;
  if (a.kind() === 'ipv4') {
    const range = a.range();
    return DENIED_V4.has(range) ? range : undefined;
  }
  const v6 = a as ipaddr.IPv6;
  const inner = embeddedV4(v6);
  if (inner) {
    // The outer form is only as good as the address it carries.
    if (listed(inner, allow)) return undefined;
    const range = inner.range();
    const form = v6.range() === 'unicast' ? 'IPv4-compatible' : v6.range();
    return DENIED_V4.has(range) ? `${form} form of a ${range}` : undefined;
  }
  const range = v6.range();
  return DENIED_V6.has(range) ? range : undefined;
}

/**
 * Resolves a host name and checks every address it has; the caller connects only to the
 * addresses returned, so no second lookup can swap in another one (DNS rebinding). One denied
 * address denies the name: a record set that mixes public and private addresses is a trick.
 */
export async function resolveChecked(hostname: string, allow: readonly Cidr[], timeoutMs = 10_000): Promise<string[]> {
  const host = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;
  const addresses = isIP(host) ? [host] : (await withTimeout(lookup(host, { all: true, verbatim: true }), timeoutMs, host)).map((r) => r.address);
  for (const address of addresses) {
    const why = deniedRange(address, allow);
    if (why) {
      throw new CredproxyError(
        'host_denied',
        `passthrough to ${host} is denied: it is a ${why} address (list the range in egress.allow_private to allow it)`,
      );
    }
  }
  if (addresses.length === 0) throw new CredproxyError('upstream_error', `${host} has no address`);
  return addresses;
}

/** The lookup counts against the connect timeout: undici's own clock starts only when it dials. */
export function withTimeout<T>(p: Promise<T>, ms: number, host: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new CredproxyError('upstream_timeout', `resolving ${host} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Who chose where a connection goes. `client`: a proxy client picked the host (passthrough,
 * CONNECT tunnels, upgrades to hosts no integration owns), so every address is checked
 * against the private ranges. `operator`: the config names it (integration hosts, token
 * endpoints, verify requests, the webhook), so it may well be internal and is not checked;
 * either way the address is resolved once and the one resolved is the one dialled.
 */
export type Chooser = 'client' | 'operator';

export interface EgressPolicy {
  chooser: Chooser;
  /** read at every new connection, so a reloaded config applies at once (ignored for `operator`) */
  allowPrivate?: () => readonly Cidr[];
  /** connect timeout, the lookup included */
  timeout: number;
}

/**
 * The addresses a connection may dial, in resolver order: the one resolve → check step every
 * way out of credproxy goes through (pooled requests via egressConnector, raw tunnels via dialTcp).
 */
export async function addressesFor(hostname: string, policy: EgressPolicy): Promise<string[]> {
  if (policy.chooser === 'client') return resolveChecked(hostname, policy.allowPrivate?.() ?? [], policy.timeout);
  const host = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;
  if (isIP(host)) return [host];
  const addresses = (await withTimeout(lookup(host, { all: true, verbatim: true }), policy.timeout, host)).map((r) => r.address);
  if (addresses.length === 0) throw new CredproxyError('upstream_error', `${host} has no address`);
  return addresses;
}

export interface EgressConnectorOptions extends EgressPolicy {
  /** the CAs to verify TLS upstreams against, asked for at every new connection; undefined = node's defaults */
  ca?: () => string[] | undefined;
}

/**
 * An undici connector: resolve, check (for client-chosen hosts), then dial a checked
 * address. TLS still uses the host name for SNI and certificate checks, because undici
 * derives the servername from `host`, which stays as the client gave it.
 */
export function egressConnector(opts: EgressConnectorOptions): buildConnector.connector {
  let dialFor: string[] | undefined;
  let dial = buildConnector({ timeout: opts.timeout });
  const dialer = () => {
    const ca = opts.ca?.();
    if (ca !== dialFor) {
      dialFor = ca;
      dial = buildConnector({ timeout: opts.timeout, ...(ca ? { ca } : {}) });
    }
    return dial;
  };
  return (options, callback) => {
    addressesFor(options.hostname, opts).then(
      (addresses) => dialInOrder(dialer(), options, addresses, callback),
      (err: Error) => callback(err, null),
    );
  };
}

export interface EgressAgentOptions extends EgressConnectorOptions {
  connections?: number;
  keepAliveTimeout?: number;
  keepAliveMaxTimeout?: number;
}

/**
 * The only way src/ builds an HTTP connection pool (eslint.config.js forbids `new Agent`
 * elsewhere): every request, upgrade, verify call, token call and webhook dials through
 * egressConnector, so no path can forget the policy.
 */
export function egressAgent(opts: EgressAgentOptions): Agent {
  const { connections, keepAliveTimeout, keepAliveMaxTimeout } = opts;
  return new Agent({
    ...(connections !== undefined ? { connections } : {}),
    ...(keepAliveTimeout !== undefined ? { keepAliveTimeout } : {}),
    ...(keepAliveMaxTimeout !== undefined ? { keepAliveMaxTimeout } : {}),
    connect: egressConnector(opts),
  });
}

/**
 * A raw TCP connection (CONNECT tunnels) through the same resolve → check → pin step:
 * resolves with a connected socket, trying the addresses in order, or rejects with the
 * CredproxyError (host_denied, upstream_timeout) or the last socket error.
 */
export async function dialTcp(hostname: string, port: number, policy: EgressPolicy, signal?: AbortSignal): Promise<net.Socket> {
  return connectInOrder(await addressesFor(hostname, policy), port, policy.timeout, hostname, signal);
}

/** The raw-socket dialInOrder: the next checked address only when one fails to connect. */
export async function connectInOrder(addresses: readonly string[], port: number, timeout: number, name: string, signal?: AbortSignal): Promise<net.Socket> {
  let last: unknown;
  for (const host of addresses) {
    try {
      return await connectOne(host, port, timeout, name, signal);
    } catch (err) {
      last = err;
      if (signal?.aborted) break;
    }
  }
  throw last;
}

function connectOne(host: string, port: number, timeout: number, name: string, signal?: AbortSignal): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, allowHalfOpen: true });
    const timer = setTimeout(() => socket.destroy(new CredproxyError('upstream_timeout', `could not connect to ${name}:${port} in time`)), timeout);
    const abort = () => socket.destroy(new Error('the client went away'));
    signal?.addEventListener('abort', abort, { once: true });
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', abort);
    };
    socket.once('error', (err) => {
      done();
      reject(err);
    });
    socket.once('connect', () => {
      done();
      // The error listener stays (a no-op once settled) until the caller has added its own.
      resolve(socket);
    });
  });
}

/**
 * Dials the checked addresses in resolver order; the next one is tried only when one fails
 * to connect (a name with both ::1 and 127.0.0.1 where only one of them listens).
 */
export function dialInOrder(
  dial: buildConnector.connector,
  options: buildConnector.Options,
  addresses: readonly string[],
  callback: buildConnector.Callback,
  i = 0,
): void {
  dial({ ...options, hostname: addresses[i]! }, (...result) => {
    if (result[0] && i + 1 < addresses.length) return dialInOrder(dial, options, addresses, callback, i + 1);
    callback(...result);
  });
}
