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
 * A ConnectionStore that measures every operation (latency, errors) and keeps the counts by
 * status, around any backend: whoever writes a connection (admin API, OAuth callback,
 * refresh) is counted without knowing about metrics.
 */
export class ObservedStore implements ConnectionStore {
  readonly counts: ConnectionCounts;

  constructor(
    private readonly inner: ConnectionStore,
    private readonly metrics: Metrics,
    log: Logger,
  ) {
    this.counts = new ConnectionCounts(inner.kv, log);
    metrics.countConnections = () => this.counts.read();
  }

  get kv(): KeyValue {
    return this.inner.kv;
  }

  private async timed<T>(op: string, fn: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      return await fn();
    } catch (err) {
      this.metrics.storeErrors.inc({ op });
      throw err;
    } finally {
      this.metrics.storeSeconds.observe({ op }, (performance.now() - started) / 1000);
    }
  }

  get(entity: string, integration: string): Promise<Connection | undefined> {
    return this.timed('get', () => this.inner.get(entity, integration));
  }

  async put(connection: Connection): Promise<void> {
    const before = await this.previous(connection.entity, connection.integration);
    await this.timed('put', () => this.inner.put(connection));
    if (before !== null) await this.counts.move(before?.status, connection.status);
  }

  async delete(entity: string, integration: string): Promise<boolean> {
    const before = await this.previous(entity, integration);
    const deleted = await this.timed('delete', () => this.inner.delete(entity, integration));
    if (deleted && before) await this.counts.move(before.status, undefined);
    return deleted;
  }

  list(entity: string, integrations: readonly string[]): Promise<Connection[]> {
    return this.timed('list', () => this.inner.list(entity, integrations));
  }

  ping(): Promise<void> {
    return this.timed('ping', () => this.inner.ping());
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  /** The stored connection before a write; null when it cannot be read (the write is then not counted). */
  private async previous(entity: string, integration: string): Promise<Connection | undefined | null> {
    try {
      return await this.inner.get(entity, integration);
    } catch {
      return null;
    }
  }
}
