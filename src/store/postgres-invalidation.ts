import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Logger } from 'pino';
import type { Invalidation } from './invalidation.js';

/** One channel for every credproxy on the database; the prefix in the payload tells stores apart. */
export const CHANNEL = 'credproxy_invalidate';

/**
 * Cache invalidation over LISTEN/NOTIFY: after a write or delete an instance sends
 * `<prefix>\n<instance id>\n<key>` on the channel; every other instance with the same prefix
 * drops its cached copy. The listener is a connection of its own, outside the pool (a pooled
 * connection is handed to other queries). While it is down notifications are lost, so the
 * cache is not trusted (`live` false), it is emptied when listening starts again, and the
 * connection is re-made every second until the database answers.
 */
export class PostgresInvalidation implements Invalidation {
  private readonly id = randomBytes(8).toString('hex');
  private client: pg.Client | undefined;
  private listening = false;
  private closed = false;
  private retry: NodeJS.Timeout | undefined;
  private onKey: (key: string) => void = () => undefined;
  private onReset: () => void = () => undefined;

  constructor(
    private readonly config: pg.ClientConfig,
    private readonly pool: pg.Pool,
    private readonly prefix: string,
    private readonly log: Logger,
    private readonly retryMs = 1_000,
  ) {}

  get live(): boolean {
    return this.listening;
  }

  async publish(key: string): Promise<void> {
    await this.pool.query('SELECT pg_notify($1, $2)', [CHANNEL, `${this.prefix}\n${this.id}\n${key}`]);
  }

  subscribe(onKey: (key: string) => void, onReset: () => void): Promise<void> {
    this.onKey = onKey;
    this.onReset = onReset;
    return this.connect();
  }

  /** Resolves once listening (or after a failed attempt, with a retry scheduled). */
  async connect(): Promise<void> {
    if (this.closed) return;
    const client = new pg.Client(this.config);
    this.client = client;
    let lost = false;
    const onLost = () => {
      if (lost) return;
      lost = true;
      if (this.listening) this.log.warn('store: cache invalidation channel lost; serving connections from the store until it is back');
      this.listening = false;
      this.onReset();
      client.end().catch(() => undefined);
      if (!this.closed && this.client === client) this.retry = setTimeout(() => void this.connect(), this.retryMs).unref();
    };
    client.on('error', onLost);
    client.on('end', onLost);
    client.on('notification', (n) => {
      if (n.channel !== CHANNEL || n.payload === undefined) return;
      const [prefix, from, ...rest] = n.payload.split('\n');
      if (prefix !== this.prefix || from === this.id) return;
      this.onKey(rest.join('\n'));
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
      if (this.closed) {
        await client.end();
        return;
      }
      // Whatever changed while not listening was missed: start from an empty cache.
      this.onReset();
      this.listening = true;
    } catch {
      onLost();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.listening = false;
    clearTimeout(this.retry);
    const client = this.client;
    if (!client) return;
    let timer: NodeJS.Timeout | undefined;
    // A stalled database never answers the goodbye: do not hold the shutdown for it.
    await Promise.race([client.end().catch(() => undefined), new Promise((r) => (timer = setTimeout(r, 1_000)))]);
    clearTimeout(timer);
  }
}
