import KeyvRedis, { createClient } from '@keyv/redis';
import Keyv from 'keyv';
import type { Logger } from 'pino';
import type { KeyvStoreOptions } from './keyv-store.js';
import { RedisInvalidation } from './redis-invalidation.js';
import { RedisLockBackend } from './redis-lock.js';
import { RedisRateLimit } from './rate-limit.js';
import { globEscape, ScanCursorError } from './scan.js';

/** Timings of the Redis store; the defaults suit a Redis on the same network. */
export interface RedisTuning {
  /** TCP connect (and, at start, the whole first connection) */
  connectTimeoutMs: number;
  /** a command unanswered after this long fails: credproxy answers 503 rather than hang */
  opTimeoutMs: number;
  /** cached connections are re-read after this long even without an invalidation */
  cacheTtlMs: number;
}

export const REDIS_DEFAULTS: RedisTuning = { connectTimeoutMs: 5_000, opTimeoutMs: 2_000, cacheTtlMs: 5_000 };

/** The URL as it may be logged or shown: no password. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//…@');
}

export interface OpenedRedis extends KeyvStoreOptions {
  keyv: Keyv<string>;
  /** every Redis key under `<prefix>:` (credproxy migrate) */
  keys(): AsyncGenerator<string>;
}

/** Reconnect quickly at first, then every second, forever: the process outlives a Redis outage. */
function reconnectStrategy(retries: number): number {
  return Math.min(50 * 2 ** retries, 1_000) + Math.floor(Math.random() * 50);
}

/**
 * Opens the Redis backend: a command connection (keyv, locks, publishing) and a subscriber
 * connection (invalidations), every key under `<prefix>:`. Configured so that a Redis
 * failure is always an error the caller sees: keyv and the adapter throw instead of
 * answering "not found", commands are refused while disconnected instead of queued, and a
 * command that gets no answer times out. Fails when Redis does not answer at start, naming
 * the URL (without its password) and the cause.
 */
export async function openRedis(url: string, prefix: string, log: Logger, tuning: Partial<RedisTuning> = {}): Promise<OpenedRedis> {
  const t = { ...REDIS_DEFAULTS, ...tuning };
  const shown = redactUrl(url);
  const client = createClient({
    url,
    disableOfflineQueue: true,
    commandOptions: { timeout: t.opTimeoutMs },
    socket: { connectTimeout: t.connectTimeoutMs, reconnectStrategy },
  });
  const subscriber = client.duplicate();
  let lastError = '';
  let down = false;
  client.on('error', (err: Error) => {
    lastError = err.message;
    if (!down) log.error({ store: shown, err: err.message }, 'store: Redis connection lost; requests that need the store answer 503 until it is back');
    down = true;
  });
  client.on('ready', () => {
    if (down) log.info({ store: shown }, 'store: Redis connection restored');
    down = false;
  });
  // The subscriber reports through RedisInvalidation; an 'error' without a listener would end the process.
  subscriber.on('error', () => undefined);

  try {
    await withDeadline(Promise.all([client.connect(), subscriber.connect()]), t.connectTimeoutMs);
  } catch {
    client.destroy();
    subscriber.destroy();
    throw new Error(`store ${shown}: could not connect to Redis within ${t.connectTimeoutMs} ms${lastError ? ` (${lastError})` : ''}`);
  }

  const adapter = new KeyvRedis<string>(client, {
    namespace: prefix,
    keyPrefixSeparator: ':',
    throwOnErrors: true,
    throwOnConnectError: true,
    connectionTimeout: t.connectTimeoutMs,
  });
  adapter.on('error', () => undefined);
  const keyv = new Keyv<string>({ store: adapter, namespace: prefix, useKeyPrefix: false, throwOnErrors: true });
  keyv.on('error', () => undefined);
  return {
    keyv,
    keys: async function* () {
      for await (const batch of client.scanIterator({ MATCH: `${prefix}:*`, COUNT: 500 })) yield* batch;
    },
    // SCAN with MATCH on the key shape (src/store/scan.ts): Redis's cursor, its hash order.
    scanKeys: async (start, cursor, count, hint) => {
      if (cursor !== undefined && !/^\d{1,20}$/.test(cursor)) throw new ScanCursorError();
      const tail = hint?.integration ? `*:${globEscape(hint.integration)}*` : '*';
      const r = await client.scan(cursor ?? '0', { MATCH: `${globEscape(prefix)}:${globEscape(start)}${tail}`, COUNT: count });
      return { keys: r.keys.map((k) => k.slice(prefix.length + 1)), ordered: false, ...(r.cursor === '0' ? {} : { next: r.cursor }) };
    },
    locks: new RedisLockBackend(client, prefix),
    rateLimit: new RedisRateLimit(client, prefix),
    invalidation: new RedisInvalidation(client, subscriber, prefix, log),
    cacheTtlMs: t.cacheTtlMs,
    opTimeoutMs: t.opTimeoutMs,
    onClose: async () => {
      client.destroy();
    },
  };
}

async function withDeadline<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('timeout')), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
