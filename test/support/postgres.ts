import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { migrate } from '../../src/store/postgres-migrations.js';
import { TcpRelay } from './relay.js';

/** The machine's PostgreSQL (.ci/run starts it when none answers): trust auth, user postgres. */
export const PG_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

export const pgUrl = (database: string, port = 5432) => `postgres://postgres@127.0.0.1:${port}/${database}`;

/**
 * A database of its own for one test (file): created empty, dropped at teardown (FORCE ends
 * connections a failed test left open). Returns its name.
 */
export async function freshDatabase(t: { teardown(fn: () => unknown): void }): Promise<string> {
  await dropOrphans();
  const name = `credproxy_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  await adminQuery(`CREATE DATABASE ${name}`);
  t.teardown(() => adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
  return name;
}

/**
 * A fresh database with credproxy's tables, and a pool on it ended at teardown. The database
 * is dropped (FORCE) at teardown, which may end idle pooled connections first: their errors
 * are expected and ignored.
 */
export async function migratedPool(t: { teardown(fn: () => unknown): void }, max: number): Promise<{ db: string; pool: pg.Pool }> {
  const db = await freshDatabase(t);
  const pool = new pg.Pool({ connectionString: pgUrl(db), max });
  pool.on('error', () => {});
  t.teardown(() => pool.end());
  await migrate(pool);
  return { db, pool };
}

export async function adminQuery(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: PG_ADMIN_URL });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

/** Raw access to a test database, for assertions on what is really stored. */
export async function query<R extends pg.QueryResultRow>(database: string, sql: string, params: unknown[] = []): Promise<R[]> {
  const c = new pg.Client({ connectionString: pgUrl(database) });
  await c.connect();
  try {
    return (await c.query<R>(sql, params)).rows;
  } finally {
    await c.end();
  }
}

/** A relay in front of the machine's PostgreSQL (see TcpRelay). */
export class PostgresRelay extends TcpRelay {
  constructor() {
    super(5432);
  }

  url(database: string): string {
    return pgUrl(database, this.port);
  }
}

/** Databases of test processes that ended without their teardown (a timeout, a kill). */
async function dropOrphans(): Promise<void> {
  const c = new pg.Client({ connectionString: PG_ADMIN_URL });
  await c.connect();
  try {
    const { rows } = await c.query<{ datname: string }>("SELECT datname FROM pg_database WHERE datname LIKE 'credproxy\\_test\\_%'");
    for (const { datname } of rows) {
      const pid = Number(/^credproxy_test_(\d+)_/.exec(datname)?.[1]);
      if (!Number.isInteger(pid) || alive(pid)) continue;
      await c.query(`DROP DATABASE IF EXISTS ${datname} WITH (FORCE)`).catch(() => undefined);
    }
  } finally {
    await c.end();
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
