import pg from 'pg';
import pino from 'pino';
import t, { type Test } from 'tap';
import { PostgresInvalidation } from '../../src/store/postgres-invalidation.js';
import { adminQuery, freshDatabase, pgUrl } from '../support/postgres.js';
import { pollUntil } from '../support/poll.js';
import { LogCapture } from '../support/servers.js';
import { Waiter } from '../support/waiter.js';
import { within } from '../support/wait-for.js';

// Caches dropped across instances through the store are in test/store/pg-instances.test.ts;
// this is the LISTEN/NOTIFY channel itself, on the machine's PostgreSQL.
async function instance(t: Test, db: string, prefix: string) {
  const pool = new pg.Pool({ connectionString: pgUrl(db), max: 2 });
  // The database is dropped (FORCE) at teardown, which may end idle pooled connections first.
  pool.on('error', () => {});
  const logs = new LogCapture();
  const inv = new PostgresInvalidation({ connectionString: pgUrl(db) }, pool, prefix, pino(logs), 50);
  const keys = new Waiter<string>();
  let resets = 0;
  t.teardown(async () => {
    await inv.close();
    await pool.end();
  });
  await inv.subscribe(keys.push, () => resets++);
  return { inv, keys, resets: () => resets, logs };
}

async function next(keys: Waiter<string>): Promise<string | undefined> {
  let key: string | undefined;
  await within(keys.next().then((k) => (key = k)));
  return key;
}

t.test('a key reaches the other instances of its prefix, not the sender nor other prefixes; newlines survive', async (t) => {
  const db = await freshDatabase(t);
  const a = await instance(t, db, 'pa');
  const b = await instance(t, db, 'pa');
  const other = await instance(t, db, 'pb');
  t.ok(a.inv.live && b.inv.live, 'live once listening');
  t.equal(a.resets(), 1, 'the cache starts empty when listening starts');
  await a.inv.publish('conn:alice:demo');
  t.equal(await next(b.keys), 'conn:alice:demo');
  await a.inv.publish('odd\nkey');
  t.equal(await next(b.keys), 'odd\nkey');
  await b.inv.publish('marker');
  t.equal(await next(a.keys), 'marker', 'a never got its own messages');
  t.equal(other.keys.length, 0, 'another prefix hears nothing');
});

t.test('a lost listener makes the cache untrusted, empties it, and comes back by itself', async (t) => {
  const db = await freshDatabase(t);
  const a = await instance(t, db, 'pa');
  const b = await instance(t, db, 'pa');
  const before = a.resets();
  await adminQuery(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${db}' AND query LIKE 'LISTEN%'`);
  t.ok(await pollUntil(() => a.resets() > before, 10_000), 'the cache was told to empty itself');
  t.match(a.logs.text, /cache invalidation channel lost/);
  t.ok(await pollUntil(() => a.inv.live && b.inv.live, 15_000), 'listening again after the retry');
  await b.inv.publish('after');
  t.equal(await next(a.keys), 'after');
});

t.test('close() stops listening and retrying', async (t) => {
  const db = await freshDatabase(t);
  const a = await instance(t, db, 'pa');
  await a.inv.close();
  t.notOk(a.inv.live);
  await a.inv.connect();
  t.notOk(a.inv.live, 'a closed channel does not reconnect');
});
