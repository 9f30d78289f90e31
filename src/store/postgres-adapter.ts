import { EventEmitter } from 'node:events';
import type pg from 'pg';
import type { KeyvStoreAdapter, StoredData } from 'keyv';

/**
 * A keyv adapter on the credproxy_kv table. Expiry is on the database's clock (instances'
 * clocks may disagree); an expired row reads as absent and is removed by purgeExpired.
 */
export class PostgresAdapter extends EventEmitter implements KeyvStoreAdapter {
  readonly opts: Record<string, never> = {};
  namespace?: string;

  constructor(private readonly pool: pg.Pool) {
    super();
  }

  async get<Value>(key: string): Promise<StoredData<Value> | undefined> {
    const { rows } = await this.pool.query<{ value: string }>(
      'SELECT value FROM credproxy_kv WHERE key = $1 AND (expires_at IS NULL OR expires_at > now())',
      [key],
    );
    return rows[0]?.value as StoredData<Value> | undefined;
  }

  async getMany<Value>(keys: string[]): Promise<Array<StoredData<Value | undefined>>> {
    return Promise.all(keys.map((k) => this.get<Value>(k)));
  }

  async set(key: string, value: unknown, ttl?: number): Promise<boolean> {
    const ms = typeof ttl === 'number' && ttl > 0 ? ttl : null;
    await this.pool.query(
      `INSERT INTO credproxy_kv (key, value, expires_at)
       VALUES ($1, $2, CASE WHEN $3::float8 IS NULL THEN NULL ELSE now() + $3::float8 * interval '1 millisecond' END)
       ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at`,
      [key, typeof value === 'string' ? value : JSON.stringify(value), ms],
    );
    return true;
  }

  /** True only for the caller that removed a live row: of two racing takers, one wins. */
  async delete(key: string): Promise<boolean> {
    const { rows } = await this.pool.query<{ n: number }>(
      `WITH d AS (DELETE FROM credproxy_kv WHERE key = $1 RETURNING expires_at)
       SELECT count(*)::int AS n FROM d WHERE expires_at IS NULL OR expires_at > now()`,
      [key],
    );
    return (rows[0]?.n ?? 0) > 0;
  }

  async has(key: string): Promise<boolean> {
    return (await this.get(key)) !== undefined;
  }

  async clear(): Promise<void> {
    const prefix = this.namespace ? `${this.namespace}:` : '';
    await this.pool.query("DELETE FROM credproxy_kv WHERE key LIKE $1 ESCAPE '\\'", [`${prefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`]);
  }

  /** Every live key under `<prefix>:` (credproxy migrate), in pages so a large table is not read at once. */
  async *keys(prefix: string): AsyncGenerator<string> {
    const like = `${prefix.replace(/[\\%_]/g, (c) => `\\${c}`)}:%`;
    let after = '';
    for (;;) {
      const { rows } = await this.pool.query<{ key: string }>(
        "SELECT key FROM credproxy_kv WHERE key LIKE $1 ESCAPE '\\' AND key > $2 AND (expires_at IS NULL OR expires_at > now()) ORDER BY key LIMIT 500",
        [like, after],
      );
      for (const r of rows) yield r.key;
      const last = rows.at(-1);
      if (!last) return;
      after = last.key;
    }
  }

  /**
   * Up to `count` live keys that start with `<prefix>:<start>`, in key order, after the key
   * `cursor` (src/store/scan.ts): one page per query, on the primary key's order.
   */
  async scanKeys(prefix: string, start: string, cursor: string | undefined, count: number): Promise<{ keys: string[]; next?: string; ordered: true }> {
    const like = `${`${prefix}:${start}`.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    const { rows } = await this.pool.query<{ key: string }>(
      "SELECT key FROM credproxy_kv WHERE key LIKE $1 ESCAPE '\\' AND key > $2 AND (expires_at IS NULL OR expires_at > now()) ORDER BY key LIMIT $3",
      [like, cursor === undefined ? '' : `${prefix}:${cursor}`, count],
    );
    const keys = rows.map((r) => r.key.slice(prefix.length + 1));
    return { keys, ordered: true, ...(keys.length === count ? { next: keys.at(-1)! } : {}) };
  }

  /** Drops expired rows (single-use states, links, idle rate buckets) so the tables do not grow forever. */
  async purgeExpired(): Promise<void> {
    await this.pool.query('DELETE FROM credproxy_kv WHERE expires_at <= now()');
    await this.pool.query('DELETE FROM credproxy_locks WHERE expires_at <= now()');
    await this.pool.query("DELETE FROM credproxy_rate WHERE at < now() - interval '61 seconds'");
  }
}
