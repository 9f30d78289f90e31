import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import type { ClientConfig, Settings } from '../config/types.js';
import { CredproxyError } from '../errors.js';

/** One configured client, with what the checks need precomputed. */
interface Client {
  name: string;
  digest: Buffer;
  entities: RegExp[];
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** `*` matches any run of entity-id characters; everything else is literal. */
export function entityPattern(p: string): RegExp {
  const body = p.split('*').map((part) => part.replace(/[.+]/g, '\\$&')).join('.*');
  return new RegExp(`^${body}$`);
}

function challenge(message: string): CredproxyError {
  return new CredproxyError('proxy_auth_required', message, { 'proxy-authenticate': 'Basic realm="credproxy"' });
}

/** The key a `Proxy-Authorization` header carries: the password of Basic, or the Bearer token. */
export function presentedKey(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^(basic|bearer)\s+(\S+)\s*$/i.exec(header);
  if (!m) return undefined;
  if (m[1]!.toLowerCase() === 'bearer') return m[2];
  const decoded = Buffer.from(m[2]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon === -1 ? undefined : decoded.slice(colon + 1);
}

/**
 * Who is calling, when `clients` is configured: every proxied request must present one
 * client's key in `Proxy-Authorization`, and may act only for the entities that client lists.
 */
export class ClientAuthenticator {
  private readonly clients: Client[];

  constructor(clients: readonly ClientConfig[]) {
    this.clients = clients.map((c) => ({ name: c.name, digest: digest(c.key), entities: c.entities.map(entityPattern) }));
  }

  /** The client whose key was presented; 407 otherwise. */
  authenticate(header: string | undefined): string {
    const key = presentedKey(header);
    if (key === undefined) throw challenge('this proxy needs Proxy-Authorization: Basic (the key as password) or Bearer <key>');
    const given = digest(key);
    // Compare against every client, without an early exit, so timing says nothing about which
    // key (or how much of one) matched.
    let found: Client | undefined;
    for (const c of this.clients) {
      if (timingSafeEqual(given, c.digest) && !found) found = c;
    }
    if (!found) throw challenge('the proxy key is not valid');
    return found.name;
  }

  /** 403 entity_denied unless the client lists a pattern that matches the entity. */
  authorize(clientName: string, entity: string | undefined): void {
    if (entity === undefined) return;
    const c = this.clients.find((x) => x.name === clientName);
    if (!c || !c.entities.some((re) => re.test(entity))) {
      throw new CredproxyError('entity_denied', `client "${clientName}" may not act for entity "${entity}"`);
    }
  }
}

/** The authenticator of a config's `clients`, null without any; each snapshot makes its own (a reload brings new keys). */
export function authenticatorFor(settings: Settings): ClientAuthenticator | null {
  return settings.clients && settings.clients.length > 0 ? new ClientAuthenticator(settings.clients) : null;
}

/**
 * The request's one `Proxy-Authorization`. node keeps only the first of repeated ones, so two
 * could mean one thing to credproxy and another to whatever sits in front of it: refused.
 */
export function proxyAuthorizationOf(req: IncomingMessage): string | undefined {
  let found: string | undefined;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() !== 'proxy-authorization') continue;
    if (found !== undefined) throw new CredproxyError('bad_request', 'the Proxy-Authorization header is given more than once');
    found = raw[i + 1]!;
  }
  return found;
}

export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || /^::ffff:127\./.test(h);
}

/**
 * An open proxy on a reachable address hands every entity's credentials to anyone who can
 * reach it, so without `clients` credproxy binds only to loopback unless told otherwise.
 */
export function checkListenPolicy(settings: Settings, log: Logger): void {
  const host = settings.listen.host;
  const clients = settings.clients?.length ?? 0;
  if (clients > 0) {
    log.info({ clients }, 'proxy clients must authenticate with Proxy-Authorization');
    return;
  }
  const problem = openProxyProblem(settings);
  if (problem) throw new Error(`refusing to listen on ${problem}`);
  if (!isLoopback(host)) log.warn({ listen: host }, 'allow_unauthenticated is set: anyone who can reach this address may use the proxy and its credentials');
}

/**
 * Why these settings would make an open proxy on a reachable address, undefined when they
 * do not. Checked at start and on every reload: a reload that drops `clients` must not open
 * a proxy that listens on a public address (src/reload.ts).
 */
export function openProxyProblem(settings: Settings): string | undefined {
  const host = settings.listen.host;
  if ((settings.clients?.length ?? 0) > 0 || isLoopback(host) || settings.allow_unauthenticated) return undefined;
  return (
    `${host}, which is not a loopback address, without client authentication: ` +
    'configure `clients` in credproxy.yaml, or set `allow_unauthenticated: true` to run an open proxy on purpose'
  );
}
