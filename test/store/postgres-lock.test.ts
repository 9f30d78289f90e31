import t, { type Test } from 'tap';
import { PostgresLockBackend } from '../../src/store/postgres-lock.js';
import { migratedPool, query } from '../support/postgres.js';

// Fenced refreshes across instances through the store are in test/store/postgres.test.ts;
// this is the lock rows and the fence themselves, on the machine's PostgreSQL.
async function setup(t: Test) {
  const { db, pool } = await migratedPool(t, 4);
  return { db, pool, a: new PostgresLockBackend(pool, 'pa'), b: new PostgresLockBackend(pool, 'pa'), other: new PostgresLockBackend(pool, 'pb') };
}

/** The lock's expiry, without waiting for it: the row's expires_at moved into the past. */
const expire = (db: string, row: string) => query(db, "UPDATE credproxy_locks SET expires_at = now() - interval '1 second' WHERE name = $1", [row]);

t.test('one holder per name and prefix; each take draws a larger fence; release frees it', async (t) => {
  const { a, b, other } = await setup(t);
  const h = await a.tryAcquire('refresh:alice:demo', 10_000);
  t.ok(h?.fence, 'a fencing number');
  t.equal(await b.tryAcquire('refresh:alice:demo', 10_000), undefined, 'held');
  t.ok(await other.tryAcquire('refresh:alice:demo', 10_000), 'another prefix is another lock');
  t.ok(await h!.held());
  t.ok(await h!.release());
  t.notOk(await h!.held());
  const next = await b.tryAcquire('refresh:alice:demo', 10_000);
  t.ok(BigInt(next!.fence!) > BigInt(h!.fence!), 'fences only grow');
});

t.test('an expired lock is taken over; the old holder neither holds, writes nor releases it', async (t) => {
  const { db, a, b } = await setup(t);
  const old = (await a.tryAcquire('x', 10_000))!;
  t.ok(await a.fencedWrite('k1', 'by-old', old), 'a write under a held lock commits');
  await expire(db, a.rowName('x'));
  t.notOk(await old.held(), 'expired is not held');
  const now = (await b.tryAcquire('x', 10_000))!;
  t.ok(now, 'taken over after expiry');
  t.notOk(await a.fencedWrite('k1', 'stale', old), "the old holder's write is refused");
  t.ok(await b.fencedWrite('k1', 'by-new', now));
  t.same(await query(db, 'SELECT value FROM credproxy_kv WHERE key = $1', ['k1']), [{ value: 'by-new' }]);
  t.notOk(await old.release(), 'nothing of the new holder is released');
  t.ok(await now.held());
});

t.test('releasing a lock that expired with nobody taking it removes the row but reports it lost', async (t) => {
  const { db, a } = await setup(t);
  const h = (await a.tryAcquire('y', 10_000))!;
  await expire(db, a.rowName('y'));
  t.notOk(await h.release(), 'reported as lost');
  t.same(await query(db, 'SELECT name FROM credproxy_locks WHERE name = $1', [a.rowName('y')]), []);
});

t.test('fencedWrite needs a fenced lock', async (t) => {
  const { a } = await setup(t);
  await t.rejects(a.fencedWrite('k', 'v', { name: 'z', token: 't', held: async () => true, release: async () => true }), /carries no fencing number/);
});
