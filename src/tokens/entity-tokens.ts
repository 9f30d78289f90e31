import { createHash, randomBytes } from 'node:crypto';
import { CredproxyError } from '../errors.js';
import { storeCall } from '../store/failure.js';
import type { KeyValue } from '../store/types.js';

/**
 * Entity tokens (DESIGN.md, contract): `cpx_` + 32 random bytes, stored only as their
 * SHA-256. Random-and-stored rather than signed: a signed token would still need a store
 * lookup on every use to honour revocation (a revocation list), so the signature buys
 * nothing, while a random token carries no claims to parse, no key to rotate, and revoking
 * it is deleting one record that every instance on a shared store sees at once. The store
 * never holds the token itself, so a store dump cannot be replayed.
 */
export const TOKEN_PREFIX = 'cpx_';
/** Anything that looks like an entity token, forged or truncated ones included: none is ever forwarded. */
export const TOKEN_LIKE = /cpx_[A-Za-z0-9_-]{8,}/;

export const DEFAULT_TTL_S = 3600;
export const MAX_TTL_S = 30 * 24 * 3600;

export interface EntityToken {
  id: string;
  entity: string;
  /** integrations the token may be used for; undefined: all */
  integrations?: string[];
  /** the labelled connection every request with the token uses; undefined: the default one, or what X-Connection-Label picks */
  label?: string;
  /** ms since epoch */
  expires_at: number;
}

const hashOf = (token: string) => createHash('sha256').update(token, 'utf8').digest('hex');
const byHash = (hash: string) => `entity-token:${hash}`;
const byId = (id: string) => `entity-token-id:${id}`;

const kvCall = <T>(fn: () => Promise<T>): Promise<T> => storeCall('entity_token', fn);

/** Mints a token; the returned `token` is shown once and never stored. */
export async function issueToken(
  kv: KeyValue,
  entity: string,
  opts: { integrations?: string[]; ttlSeconds?: number; label?: string },
  now = Date.now(),
): Promise<EntityToken & { token: string }> {
  const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
  const id = `tok_${randomBytes(12).toString('base64url')}`;
  const ttlMs = (opts.ttlSeconds ?? DEFAULT_TTL_S) * 1000;
  const record: EntityToken = { id, entity, integrations: opts.integrations, label: opts.label, expires_at: now + ttlMs };
  const hash = hashOf(token);
  await kvCall(() => kv.set(byHash(hash), JSON.stringify(record), ttlMs));
  await kvCall(() => kv.set(byId(id), hash, ttlMs));
  return { ...record, token };
}

/** The token's record; 403 entity_denied when it is unknown (forged), revoked or expired. */
export async function verifyToken(kv: KeyValue, token: string, now = Date.now()): Promise<EntityToken> {
  const text = /^cpx_[A-Za-z0-9_-]{43}$/.test(token) ? await kvCall(() => kv.get(byHash(hashOf(token)))) : undefined;
  let record: EntityToken | undefined;
  try {
    record = text === undefined ? undefined : (JSON.parse(text) as EntityToken);
  } catch {
    record = undefined;
  }
  if (!record || record.expires_at <= now) {
    throw new CredproxyError('entity_denied', 'the entity token (cpx_…) is not valid: unknown, expired or revoked; nothing was forwarded');
  }
  return record;
}

/** Revokes by id; false when there is no such (live) token. */
export async function revokeToken(kv: KeyValue, id: string): Promise<boolean> {
  const hash = await kvCall(() => kv.take(byId(id)));
  if (hash === undefined) return false;
  await kvCall(() => kv.delete(byHash(hash)));
  return true;
}
