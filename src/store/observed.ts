import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { Metrics } from '../metrics.js';
import type { Connection, ConnectionStatus, ConnectionStore, KeyValue } from './types.js';

/** The kv record holding connection counts by status. */
export const COUNTS_KEY = 'stats:connections';

/**
 * Connection counts by status, kept up to date on every write instead of counted by a scan:
 * a scrape reads one small record whatever the size of the store. The record lives in the
 * store itself so it survives restarts and is shared by instances on one Redis. Updates are
 * serialized within a process; two instances writing at the same instant can make it drift
 * by one (it is a gauge for dashboards, not an inventory).
 */
export class ConnectionCounts {
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly kv: KeyValue,
    private readonly log: Logger,
  ) {}

  async read(): Promise<Record<string, number>> {
    const raw = await this.kv.get(COUNTS_KEY);
    if (raw === undefined) return {};
    try {
      const parsed = JSON.parse(raw) as unknown;
      return parsed !== null && typeof parsed === 'object' ? (parsed as Record<string, number>) : {};
    } catch {
      return {};
    }
  }

  /** Moves one connection from one status to another (undefined: not stored). */
  move(from: ConnectionStatus | undefined, to: ConnectionStatus | undefined): Promise<void> {
    if (from === to) return this.chain;
    this.chain = this.chain
      .then(async () => {
        const counts = await this.read();
        if (from) counts[from] = Math.max(0, (counts[from] ?? 0) - 1);
        if (to) counts[to] = (counts[to] ?? 0) + 1;
        await this.kv.set(COUNTS_KEY, JSON.stringify(counts));
      })
      .catch((err: unknown) => {
        // Counting must never fail the write it counts.
        this.log.warn({ err: (err as Error).message }, 'could not update the connection counts');
      });
    return this.chain;
  }
}

/**
 * Wraps any ConnectionStore so every operation is measured (latency, errors), the counts by
 * status are kept, and status changes are reported (connection events): whoever writes a
 * connection (admin API, OAuth callback, refresh) is counted and announced without knowing
 * about metrics or webhooks. A Proxy rather than a class, so members the store gains later
 * (locks, options on get) pass through untouched, arguments included.
 */
export function observeStore<T extends ConnectionStore>(
  inner: T,
  metrics: Metrics,
  log: Logger,
  /** called after a write that changed a connection's status (not after token refreshes, which keep it) */
  onStatusChange?: (connection: Connection, from: ConnectionStatus | undefined) => void,
): T {
  const counts = new ConnectionCounts(inner.kv, log);
  metrics.countConnections = () => counts.read();

  async function timed<R>(op: string, fn: () => Promise<R>): Promise<R> {
    const started = performance.now();
    try {
      return await fn();
    } catch (err) {
      metrics.storeErrors.inc({ op });
      throw err;
    } finally {
      metrics.storeSeconds.observe({ op }, (performance.now() - started) / 1000);
    }
  }

  /** The stored connection before a write; null when it cannot be read (the write is then not counted). */
  async function previous(entity: string, integration: string, label: string | undefined): Promise<Connection | undefined | null> {
    try {
      return await inner.get(entity, integration, { label });
    } catch {
      return null;
    }
  }

  type Store = ConnectionStore;
  const overrides: Partial<Store> = {
    get: (...args: Parameters<Store['get']>) => timed('get', () => inner.get(...args)),
    // A cache hit is not a store operation: it is neither timed nor counted.
    peek: (entity: string, integration: string, label?: string) => inner.peek?.(entity, integration, label),
    async put(...args: Parameters<Store['put']>) {
      const [connection] = args;
      const before = await previous(connection.entity, connection.integration, connection.label);
      await timed('put', () => inner.put(...args));
      if (before === null) return;
      await counts.move(before?.status, connection.status);
      if (before?.status !== connection.status) onStatusChange?.(connection, before?.status);
    },
    async delete(...args: Parameters<Store['delete']>) {
      const before = await previous(args[0], args[1], args[2]);
      const deleted = await timed('delete', () => inner.delete(...args));
      if (deleted && before) await counts.move(before.status, undefined);
      return deleted;
    },
    list: (...args: Parameters<Store['list']>) => timed('list', () => inner.list(...args)),
    scan: (...args: Parameters<Store['scan']>) => timed('scan', () => inner.scan(...args)),
    ping: (...args: Parameters<Store['ping']>) => timed('ping', () => inner.ping(...args)),
  };
  // The request path reads the store's peek and rateLimit on every request: an override is
  // found without a hasOwnProperty call, and a method is bound once, not on every read.
  const own = Object.assign(Object.create(null) as Record<PropertyKey, unknown>, overrides);
  const bound = new Map<PropertyKey, { of: unknown; fn: unknown }>();
  return new Proxy(inner, {
    get(target, prop) {
      const override = own[prop];
      if (override !== undefined) return override;
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      // Methods run on the store itself, so its private fields keep working.
      const hit = bound.get(prop);
      if (hit?.of === value) return hit.fn;
      const fn = (value as (...a: unknown[]) => unknown).bind(target);
      bound.set(prop, { of: value, fn });
      return fn;
    },
  });
}
