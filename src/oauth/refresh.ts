import type { SchemeContext } from '../auth/types.js';
import type { IntegrationConfig } from '../config/types.js';
import { CredproxyError } from '../errors.js';
import { connectionId, labelled } from '../store/label.js';
import { LockTimeoutError } from '../store/lock.js';
import { lockedUpdate } from '../store/locked-update.js';
import type { Connection } from '../store/types.js';
import { refreshBeforeMs, withParams, type OAuthAuthConfig } from './client-config.js';
import type { RefreshState } from './refresh-state.js';
import { requestToken, TokenEndpointError, type TokenSet } from './token-client.js';
import { applyTokenSet } from './token-set.js';

const STALE_MAX = 10_000;

/**
 * How long the store lock of a refresh lives: the token endpoint call (bounded by its
 * timeout) plus the store reads and the write around it. A crashed holder delays the other
 * instances by at most this long.
 */
export const refreshLockTtlMs = (tokenTimeoutMs: number) => tokenTimeoutMs + 10_000;

/** Remembers that the upstream refused `token`, so the next request refreshes before using it. */
export function markStale(state: RefreshState, token: string | undefined): void {
  if (token === undefined) return;
  const s = state.stale;
  if (s.size >= STALE_MAX) s.clear();
  s.add(token);
}

export const connectionKey = (c: Pick<Connection, 'entity' | 'integration' | 'label'>) => connectionId(c.entity, c.integration, c.label);

/**
 * The connection with a token fit to use: refreshed first when it expires within
 * `refresh_before`, or when the upstream refused it (`stale`). One refresh at a time per
 * connection; a caller whose token someone else already replaced just gets the newer one,
 * and a caller holding the very token a refresh under way replaces waits for that refresh
 * (rather than sending a request the upstream is about to refuse).
 * A proactive refresh that fails transiently while the token is still valid uses the old
 * token rather than failing the request.
 */
export function freshConnection(
  ctx: SchemeContext,
  integration: IntegrationConfig,
  config: OAuthAuthConfig,
  conn: Connection,
  stale: string | undefined,
): Connection | Promise<Connection> {
  const state = ctx.refresh;
  const token = conn.credentials.access_token;
  const key = connectionKey(conn);
  // A refresh of this very token is under way: a request sent with it now would most
  // likely come back refused (a refresh storm), so this one waits for the new token.
  const run = state.local.running(key);
  const joining = run !== undefined && run.token === token;
  const refused = token !== undefined && (stale === token || state.stale.has(token) || (joining && run.refused));
  const now = Date.now();
  const expiring = conn.expires_at !== undefined && conn.expires_at - now <= refreshBeforeMs(config);
  if ((!refused && !expiring && !joining) || !conn.credentials.refresh_token) return conn;
  const stillValid = !refused && conn.expires_at !== undefined && conn.expires_at > now;
  const wait = joining ? 0 : state.backoff.waitFor(key, now);
  if (wait > 0) {
    if (stillValid) return conn;
    throw new CredproxyError(
      'refresh_failed',
      `refreshing the token of entity "${conn.entity}" for "${conn.integration}"${labelled(conn.label)} failed recently; next attempt in ${Math.ceil(wait / 1000)} s`,
    );
  }
  return state.local.run(key, () => refreshNow(ctx, state, integration, config, conn.entity, conn.label, token), { token, refused }).catch((err: unknown) => {
    if (stillValid && err instanceof CredproxyError && err.code === 'refresh_failed') {
      ctx.log.warn({ entity: conn.entity, integration: conn.integration, label: conn.label, err: err.message }, 'proactive refresh failed; the current token is still valid');
      return conn;
    }
    throw err;
  });
}

/**
 * One refresh across every instance on the store (store/locked-update.ts): the store lock
 * for the connection (Redis, or in-process for the embedded and memory stores), then a
 * re-read past the cache. If the token the caller saw was already replaced (another
 * instance or request refreshed), that connection is used and the provider is not called.
 * Otherwise the stored refresh token is spent, and the result is written only if the
 * store still holds that refresh token (fencing).
 */
async function refreshNow(
  ctx: SchemeContext,
  state: RefreshState,
  integration: IntegrationConfig,
  config: OAuthAuthConfig,
  entity: string,
  label: string | undefined,
  usedToken: string | undefined,
): Promise<Connection> {
  const name = integration.name;
  const key = connectionKey({ entity, integration: name, label });
  const which = labelled(label);
  let spent: string | undefined;
  let set: TokenSet | undefined;
  let result;
  try {
    result = await lockedUpdate(
      ctx.store,
      entity,
      name,
      {
        // Expired: nothing to do but answer so. A changed access token: someone refreshed.
        needed: (cur) => cur.status !== 'expired' && cur.credentials.access_token === usedToken && cur.credentials.refresh_token !== undefined,
        update: async (cur) => {
          spent = cur.credentials.refresh_token;
          const now = Date.now();
          try {
            set = await requestToken(
              withParams(config, cur.params),
              { id: config.client_id ?? '', secret: config.client_secret },
              { type: 'refresh_token', refreshToken: spent ?? '' },
              { dispatcher: ctx.dispatcher, timeoutMs: ctx.timeoutMs },
            );
          } catch (err) {
            if (err instanceof TokenEndpointError && err.kind === 'rejected') {
              ctx.metrics.refreshes.inc({ integration: name, outcome: 'invalid_grant' });
              // Not a streak that recovers: connection.expired (from the store) says what happened.
              state.failing.delete(key);
              // The refresh token is dead: keep it stored (it is evidence, and never usable
              // again anyway) but mark the connection so that no request, on any instance,
              // calls the provider for it again.
              ctx.log.warn({ entity, integration: name, label, error: err.oauthError }, 'refresh refused; connection expired');
              return { ...cur, status: 'expired', reason: `refresh refused: ${err.oauthError}`, updated_at: now };
            }
            throw err;
          }
          ctx.metrics.refreshes.inc({ integration: name, outcome: 'ok' });
          return { ...cur, ...applyTokenSet(cur, set, now), status: 'active', reason: undefined, refreshed_at: now, updated_at: now };
        },
        unchanged: (stored, base) => stored.credentials.refresh_token === base.credentials.refresh_token,
      },
      { ttlMs: refreshLockTtlMs(ctx.timeoutMs), log: ctx.log, label, writeBack: ctx.writeBack },
    );
  } catch (err) {
    if (err instanceof CredproxyError) throw err;
    const msg = err instanceof LockTimeoutError ? 'another instance held the refresh lock for too long' : err instanceof Error ? err.message : String(err);
    // The provider was not called when the lock could not be had: nothing to back off from,
    // and nothing to announce (the instance holding the lock is refreshing).
    if (!(err instanceof LockTimeoutError)) {
      state.backoff.failed(key);
      ctx.metrics.refreshes.inc({ integration: name, outcome: 'error' });
      if (!state.failing.has(key)) {
        state.failing.add(key);
        ctx.events.emit({ type: 'connection.refresh_failed', entity, integration: name, label, status: 'active', reason: msg });
      }
    }
    ctx.log.warn({ entity, integration: name, label, err: msg }, 'refresh failed');
    throw new CredproxyError('refresh_failed', `refreshing the token of entity "${entity}" for "${name}"${which} failed: ${msg}`);
  }
  const cur = result.connection;
  if (!cur) throw new CredproxyError('connection_missing', `entity "${entity}" has no connection${which} for integration "${name}"`);
  if (cur.status === 'expired') throw expiredError(entity, name, label);
  // A working token again, whether this call refreshed or another instance did meanwhile.
  if ((result.updated || cur.credentials.access_token !== usedToken) && state.failing.delete(key)) {
    ctx.events.emit({ type: 'connection.recovered', entity, integration: name, label, status: 'active' });
  }
  if (result.updated) {
    state.backoff.succeeded(key);
    if (usedToken !== undefined) state.stale.delete(usedToken);
    const rotated = set?.refresh_token !== undefined && set.refresh_token !== spent;
    // Not persisted: the store failed after the provider answered. The result (perhaps a
    // rotated refresh token, the only valid one now) waits in memory with the lock and is
    // written when the store is back; this request may use the new access token meanwhile.
    ctx.log.info({ entity, integration: name, label, rotated, persisted: result.persisted }, 'token refreshed');
  }
  return cur;
}

const expiredError = (entity: string, name: string, label: string | undefined) =>
  new CredproxyError('connection_expired', `the connection${labelled(label)} of entity "${entity}" to "${name}" expired; the user must connect again`);
