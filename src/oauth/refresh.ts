import type { SchemeContext } from '../auth/types.js';
import type { IntegrationConfig } from '../config/types.js';
import { CredproxyError } from '../errors.js';
import type { Connection, ConnectionStore } from '../store/types.js';
import { Backoff } from './backoff.js';
import { refreshBeforeMs, withParams, type OAuthAuthConfig } from './client-config.js';
import { SingleFlight, type RefreshLock } from './single-flight.js';
import { requestToken, TokenEndpointError } from './token-client.js';
import { applyTokenSet } from './token-set.js';

/** Refresh bookkeeping of one store (so one running credproxy): locks, backoff, tokens known stale. */
export interface RefreshState {
  /** one refresh at a time per connection within this process */
  readonly local: SingleFlight;
  /** across instances sharing the store (issue 6: a lock in Redis); taken by the one local caller only */
  shared?: RefreshLock;
  readonly backoff: Backoff;
  /** access tokens an upstream refused while the request could not be replayed: the next use refreshes first */
  readonly stale: Set<string>;
}

const states = new WeakMap<ConnectionStore, RefreshState>();
const STALE_MAX = 10_000;

export function refreshState(store: ConnectionStore): RefreshState {
  let s = states.get(store);
  if (!s) {
    s = { local: new SingleFlight(), backoff: new Backoff(), stale: new Set() };
    states.set(store, s);
  }
  return s;
}

/**
 * Adds a cross-instance lock behind the in-process one. refreshNow() re-reads the connection
 * once it holds the lock, so a refresh another instance finished is reused, not repeated;
 * with a shared store that read must bypass the store's in-memory cache.
 */
export function useSharedRefreshLock(store: ConnectionStore, lock: RefreshLock): void {
  refreshState(store).shared = lock;
}

/** Remembers that the upstream refused `token`, so the next request refreshes before using it. */
export function markStale(store: ConnectionStore, token: string | undefined): void {
  if (token === undefined) return;
  const s = refreshState(store).stale;
  if (s.size >= STALE_MAX) s.clear();
  s.add(token);
}

export const connectionKey = (c: Pick<Connection, 'entity' | 'integration'>) => `${c.entity}\n${c.integration}`;

/**
 * The connection with a token fit to use: refreshed first when it expires within
 * `refresh_before`, or when the upstream refused it (`stale`). One refresh at a time per
 * connection; a caller whose token someone else already replaced just gets the newer one.
 * A proactive refresh that fails transiently while the token is still valid uses the old
 * token rather than failing the request.
 */
export async function freshConnection(
  ctx: SchemeContext,
  integration: IntegrationConfig,
  config: OAuthAuthConfig,
  conn: Connection,
  stale: string | undefined,
): Promise<Connection> {
  const state = refreshState(ctx.store);
  const token = conn.credentials.access_token;
  const now = Date.now();
  const refused = token !== undefined && (stale === token || state.stale.has(token));
  const expiring = conn.expires_at !== undefined && conn.expires_at - now <= refreshBeforeMs(config);
  if ((!refused && !expiring) || !conn.credentials.refresh_token) return conn;
  const stillValid = !refused && conn.expires_at !== undefined && conn.expires_at > now;
  const key = connectionKey(conn);
  const wait = state.backoff.waitFor(key, now);
  if (wait > 0) {
    if (stillValid) return conn;
    throw new CredproxyError(
      'refresh_failed',
      `refreshing the token of entity "${conn.entity}" for "${conn.integration}" failed recently; next attempt in ${Math.ceil(wait / 1000)} s`,
    );
  }
  try {
    const refresh = () => refreshNow(ctx, state, integration, config, conn.entity, token);
    return await state.local.run(key, () => (state.shared ? state.shared.run(key, refresh) : refresh()));
  } catch (err) {
    if (stillValid && err instanceof CredproxyError && err.code === 'refresh_failed') {
      ctx.log.warn({ entity: conn.entity, integration: conn.integration, err: err.message }, 'proactive refresh failed; the current token is still valid');
      return conn;
    }
    throw err;
  }
}

async function refreshNow(
  ctx: SchemeContext,
  state: RefreshState,
  integration: IntegrationConfig,
  config: OAuthAuthConfig,
  entity: string,
  usedToken: string | undefined,
): Promise<Connection> {
  const name = integration.name;
  const cur = await storeCall(() => ctx.store.get(entity, name));
  if (!cur) throw new CredproxyError('connection_missing', `entity "${entity}" has no connection for integration "${name}"`);
  if (cur.status === 'expired') throw expiredError(entity, name);
  const refreshToken = cur.credentials.refresh_token;
  // Someone (another request, another instance) refreshed since this caller read the token.
  if (cur.credentials.access_token !== usedToken || !refreshToken) return cur;
  const key = connectionKey(cur);
  const now = Date.now();
  let set;
  try {
    set = await requestToken(
      withParams(config, cur.params),
      { id: config.client_id ?? '', secret: config.client_secret },
      { type: 'refresh_token', refreshToken },
      { dispatcher: ctx.dispatcher, timeoutMs: ctx.timeoutMs },
    );
  } catch (err) {
    if (err instanceof TokenEndpointError && err.kind === 'rejected') {
      // The refresh token is dead: keep it stored (it is evidence, and never usable again
      // anyway) but mark the connection so that no request calls the provider for it again.
      await storeCall(() => ctx.store.put({ ...cur, status: 'expired', reason: `refresh refused: ${err.oauthError}`, updated_at: now }));
      ctx.log.warn({ entity, integration: name, error: err.oauthError }, 'refresh refused; connection expired');
      throw expiredError(entity, name);
    }
    state.backoff.failed(key);
    const msg = err instanceof Error ? err.message : String(err);
    ctx.log.warn({ entity, integration: name, err: msg }, 'refresh failed');
    throw new CredproxyError('refresh_failed', `refreshing the token of entity "${entity}" for "${name}" failed: ${msg}`);
  }
  // The connection may have been replaced (another scheme stored, a re-connect finished) or
  // deleted while the token endpoint answered: writing now would bring old secrets back.
  const latest = await storeCall(() => ctx.store.get(entity, name, { fresh: true }));
  if (!latest) throw new CredproxyError('connection_missing', `entity "${entity}" has no connection for integration "${name}"`);
  if (latest.updated_at !== cur.updated_at || latest.scheme !== cur.scheme || latest.credentials.access_token !== cur.credentials.access_token) {
    ctx.log.info({ entity, integration: name }, 'connection replaced during a refresh; the refreshed tokens are dropped');
    return latest;
  }
  const next: Connection = { ...cur, ...applyTokenSet(cur, set, now), status: 'active', reason: undefined, updated_at: now };
  // Persisted before use: a rotated refresh token must never exist only in memory.
  await storeCall(() => ctx.store.put(next));
  state.backoff.succeeded(key);
  if (usedToken !== undefined) state.stale.delete(usedToken);
  ctx.log.info({ entity, integration: name, rotated: set.refresh_token !== undefined && set.refresh_token !== refreshToken }, 'token refreshed');
  return next;
}

const expiredError = (entity: string, name: string) =>
  new CredproxyError('connection_expired', `the connection of entity "${entity}" to "${name}" expired; the user must connect again`);

async function storeCall<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch {
    throw new CredproxyError('store_unavailable', 'the store does not answer');
  }
}
