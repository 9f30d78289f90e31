import type pg from 'pg';

/**
 * The PostgreSQL schema, as numbered steps. A step is never edited once released: a change
 * is a new step, so a database made by any release can be brought up to this one.
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'kv, locks, rate buckets',
    sql: `
      -- Every record keyv writes (connections, label indexes, entity token hashes, OAuth
      -- states, links): sealed values, expiry on the database's clock.
      CREATE TABLE credproxy_kv (
        key text PRIMARY KEY,
        value text NOT NULL,
        expires_at timestamptz
      );
      CREATE INDEX credproxy_kv_expires ON credproxy_kv (expires_at) WHERE expires_at IS NOT NULL;
      -- Refresh locks: one row per held lock; fence grows with every take, so a write made
      -- under a lock that was lost (expired and taken by another instance) can be refused.
      CREATE SEQUENCE credproxy_fence;
      CREATE TABLE credproxy_locks (
        name text PRIMARY KEY,
        token text NOT NULL,
        fence bigint NOT NULL,
        expires_at timestamptz NOT NULL
      );
      -- Rate-cap token buckets every instance shares.
      CREATE TABLE credproxy_rate (
        key text PRIMARY KEY,
        tokens double precision NOT NULL,
        allowed boolean NOT NULL,
        at timestamptz NOT NULL
      );
    `,
  },
];

/** Any fixed number: the advisory lock that serializes migrating instances (it spells "cred"). */
const MIGRATION_LOCK = 0x63726564;

/**
 * Brings the database to the newest schema. Instances starting at once queue on one
 * session-level advisory lock, so each step runs exactly once; each step and its row in
 * credproxy_migrations commit together, so a failed step leaves nothing half done.
 * Returns the versions this call applied (none when another instance already did).
 */
export async function migrate(pool: pg.Pool, migrations: readonly Migration[] = MIGRATIONS): Promise<number[]> {
  const client = await pool.connect();
  const applied: number[] = [];
  let broken = false;
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    try {
      await client.query(`CREATE TABLE IF NOT EXISTS credproxy_migrations (
        version integer PRIMARY KEY,
        name text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`);
      const { rows } = await client.query<{ version: number }>('SELECT version FROM credproxy_migrations');
      const done = new Set(rows.map((r) => r.version));
      const newest = Math.max(0, ...done);
      const known = Math.max(0, ...migrations.map((m) => m.version));
      if (newest > known) {
        throw new Error(`the database schema is at version ${newest}, newer than this credproxy knows (${known}): upgrade credproxy`);
      }
      for (const m of migrations) {
        if (done.has(m.version)) continue;
        await client.query('BEGIN');
        try {
          await client.query(m.sql);
          await client.query('INSERT INTO credproxy_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw new Error(`schema migration ${m.version} (${m.name}) failed: ${(err as Error).message}`);
        }
        applied.push(m.version);
      }
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => {
        broken = true;
      });
    }
  } catch (err) {
    broken = true;
    throw err;
  } finally {
    // A connection whose state is unknown (lock perhaps still held) is closed, not reused.
    client.release(broken);
  }
  return applied;
}
