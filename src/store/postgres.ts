import Keyv from 'keyv';
import pg from 'pg';
import type { Logger } from 'pino';
import type { KeyvStoreOptions } from './keyv-store.js';
import { PostgresAdapter } from './postgres-adapter.js';
import { PostgresInvalidation } from './postgres-invalidation.js';
import { PostgresLockBackend } from './postgres-lock.js';
import { migrate } from './postgres-migrations.js';
import { PostgresRateLimit } from './postgres-rate-limit.js';
import { REDIS_DEFAULTS, redactUrl, type RedisTuning } from './redis.js';

/** The same timings as Redis (connect, per operation, cache fallback ttl): one set of knobs for shared stores. */
export type StoreTuning = RedisTuning;

export const isPostgresUrl = (url: string) => /^postgres(ql)?:\/\//.test(url);

export interface OpenedPostgres extends KeyvStoreOptions {
  keyv: Keyv<string>;
  pool: pg.Pool;
  /** every live key under `<prefix>:` (credproxy migrate) */
  keys(): AsyncGenerator<string>;
  /** schema versions applied by this start (empty when the database was up to date) */
  migrated: number[];
}

/** How long closing waits for the database to acknowledge (a stalled one never does). */
export const CLOSE_WAIT_MS = 1_000;

export async function boundedWait(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p.catch(() => undefined), new Promise((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

/** Expired rows are swept this often (and once at start). */
const PURGE_EVERY_MS = 10 * 60_000;

/**
 * Opens the PostgreSQL backend: a pool for keyv, locks, rate buckets and notifications, and
 * one listening connection for invalidations. The schema is brought up to date first. As
 * with Redis, every failure is an error the caller sees (503 store_unavailable upstream):
 * a query waits at most opTimeoutMs, a new connection at most connectTimeoutMs, and the
 * pool replaces broken connections by itself, so the store recovers without a restart.
 * Fails when the database does not answer at start, naming the URL without its password.
 */
export async function openPostgres(url: string, prefix: string, log: Logger, tuning: Partial<StoreTuning> = {}): Promise<OpenedPostgres> {
  const t = { ...REDIS_DEFAULTS, ...tuning };
  const shown = redactUrl(url);
  const config: pg.ClientConfig = {
    connectionString: url,
    connectionTimeoutMillis: t.connectTimeoutMs,
    query_timeout: t.opTimeoutMs,
    keepAlive: true,
  };
  const pool = new pg.Pool({ ...config, max: 10, idleTimeoutMillis: 30_000 });
  let down = false;
  // An idle pooled connection that breaks is reported here; without a listener it would end the process.
  pool.on('error', (err) => {
    if (!down) log.error({ store: shown, err: err.message }, 'store: PostgreSQL connection lost; requests that need the store answer 503 until it is back');
    down = true;
  });
  pool.on('connect', () => {
    if (down) log.info({ store: shown }, 'store: PostgreSQL connection restored');
    down = false;
  });

  try {
    await pool.query('SELECT 1');
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw new Error(`store ${shown}: could not connect to PostgreSQL within ${t.connectTimeoutMs} ms (${(err as Error).message})`);
  }
  let migrated: number[];
  // A connection of its own without the per-query timeout: waiting for the advisory lock
  // while another instance migrates, or a long step, must not fail the start.
  const migrator = new pg.Pool({ connectionString: url, connectionTimeoutMillis: t.connectTimeoutMs, max: 1 });
  migrator.on('error', () => undefined);
  try {
    migrated = await migrate(migrator);
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw new Error(`store ${shown}: ${(err as Error).message}`);
  } finally {
    await migrator.end().catch(() => undefined);
  }
  if (migrated.length > 0) log.info({ store: shown, versions: migrated }, 'store: PostgreSQL schema migrated');

  const adapter = new PostgresAdapter(pool);
  adapter.on('error', () => undefined);
  const keyv = new Keyv<string>({ store: adapter, namespace: prefix, throwOnErrors: true });
  keyv.on('error', () => undefined);
  const locks = new PostgresLockBackend(pool, prefix);
  const invalidation = new PostgresInvalidation(config, pool, prefix, log);
  const purge = () => adapter.purgeExpired().catch(() => undefined);
  await purge();
  const sweeper = setInterval(purge, PURGE_EVERY_MS).unref();
  return {
    keyv,
    pool,
    keys: () => adapter.keys(prefix),
    scanKeys: (start, cursor, count) => adapter.scanKeys(prefix, start, cursor, count),
    migrated,
    locks,
    rateLimit: new PostgresRateLimit(pool, prefix),
    invalidation,
    // keyv keeps its namespace and value envelope in the row: the fenced write stores the same.
    fencedSet: (key, value, lock) => locks.fencedWrite(`${prefix}:${key}`, JSON.stringify({ value }), lock),
    cacheTtlMs: t.cacheTtlMs,
    opTimeoutMs: t.opTimeoutMs,
    onClose: async () => {
      clearInterval(sweeper);
      // A stalled database never answers the goodbye: do not hold the shutdown for it.
      await boundedWait(pool.end(), CLOSE_WAIT_MS);
    },
  };
}
