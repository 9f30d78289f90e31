import type pg from 'pg';
import { lockToken, type LockBackend, type LockHandle } from './lock.js';

/**
 * Locks shared by every instance on one PostgreSQL: a row in credproxy_locks per held lock,
 * taken by an UPSERT that only replaces an expired row, with expiry on the database's clock.
 * Each take draws a fencing number from a sequence; a write made under the lock
 * (fencedWrite) commits only while the row still carries that number, so an instance whose
 * lock expired mid-refresh (a stalled process) cannot overwrite the new holder's result.
 * Rows rather than advisory locks: an advisory lock lives with one connection, and a pooled
 * connection lost mid-refresh would release it silently.
 */
export class PostgresLockBackend implements LockBackend {
  constructor(private readonly pool: pg.Pool, private readonly prefix: string) {}

  rowName(name: string): string {
    return `${this.prefix}:${name}`;
  }

  async tryAcquire(name: string, ttlMs: number): Promise<LockHandle | undefined> {
    const row = this.rowName(name);
    const token = lockToken();
    const { rows } = await this.pool.query<{ fence: string }>(
      `INSERT INTO credproxy_locks AS l (name, token, fence, expires_at)
       VALUES ($1, $2, nextval('credproxy_fence'), now() + $3::float8 * interval '1 millisecond')
       ON CONFLICT (name) DO UPDATE SET token = excluded.token, fence = excluded.fence, expires_at = excluded.expires_at
       WHERE l.expires_at <= now()
       RETURNING fence::text`,
      [row, token, Math.max(1, Math.round(ttlMs))],
    );
    const fence = rows[0]?.fence;
    if (fence === undefined) return undefined;
    return {
      name,
      token,
      fence,
      held: async () => {
        const r = await this.pool.query('SELECT 1 FROM credproxy_locks WHERE name = $1 AND fence = $2 AND expires_at > now()', [row, fence]);
        return r.rowCount === 1;
      },
      release: async () => {
        // An expired row of ours goes too (nobody took it over), but is reported as lost.
        const r = await this.pool.query<{ n: number }>(
          `WITH d AS (DELETE FROM credproxy_locks WHERE name = $1 AND fence = $2 RETURNING expires_at)
           SELECT count(*)::int AS n FROM d WHERE expires_at > now()`,
          [row, fence],
        );
        return (r.rows[0]?.n ?? 0) === 1;
      },
    };
  }

  /**
   * Writes a kv row only while `lock` still holds (same fence, not expired), in one
   * statement: FOR SHARE keeps the lock row from being taken over between check and write.
   * False when the lock was lost (nothing written).
   */
  async fencedWrite(key: string, value: string, lock: LockHandle): Promise<boolean> {
    if (lock.fence === undefined) throw new Error(`lock "${lock.name}" carries no fencing number`);
    const r = await this.pool.query(
      `WITH l AS (SELECT 1 FROM credproxy_locks WHERE name = $3 AND fence = $4 AND expires_at > now() FOR SHARE)
       INSERT INTO credproxy_kv (key, value, expires_at) SELECT $1, $2, NULL FROM l
       ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = NULL`,
      [key, value, this.rowName(lock.name), lock.fence],
    );
    return r.rowCount === 1;
  }
}
