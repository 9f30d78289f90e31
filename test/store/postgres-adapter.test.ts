import t, { type Test } from 'tap';
import { PostgresAdapter } from '../../src/store/postgres-adapter.js';
import { migratedPool, query } from '../support/postgres.js';

// The connection store on PostgreSQL is in test/store/postgres.test.ts; this is the adapter.
async function setup(t: Test) {
  const { db, pool } = await migratedPool(t, 4);
  return { db, a: new PostgresAdapter(pool) };
}

/** Expiry without waiting for it: the row's expires_at moved into the past, on the database's clock. */
const expire = (db: string, key: string) => query(db, "UPDATE credproxy_kv SET expires_at = now() - interval '1 second' WHERE key = $1", [key]);

t.test('set, get, replace, delete; objects stored as JSON', async (t) => {
  const { a } = await setup(t);
  await a.set('n:a', 'text');
  await a.set('n:b', { x: 1 });
  await a.set('n:a', 'replaced');
  t.equal(await a.get('n:a'), 'replaced');
  t.equal(await a.get('n:b'), '{"x":1}');
  t.same(await a.getMany(['n:a', 'missing']), ['replaced', undefined]);
  t.ok(await a.delete('n:a'));
  t.notOk(await a.delete('n:a'));
  t.notOk(await a.has('n:a'));
});

t.test('an expired row reads as absent, cannot be deleted as live, and is purged', async (t) => {
  const { db, a } = await setup(t);
  await a.set('s:1', 'v', 60_000);
  await a.set('s:2', 'v', 60_000);
  await a.set('s:forever', 'v');
  t.equal(await a.get('s:1'), 'v');
  await expire(db, 's:1');
  await expire(db, 's:2');
  t.equal(await a.get('s:1'), undefined);
  t.notOk(await a.delete('s:1'), 'taking an expired state is no take');
  await a.purgeExpired();
  t.same(await query(db, "SELECT key FROM credproxy_kv WHERE key LIKE 's:%' ORDER BY key"), [{ key: 's:forever' }]);
});

t.test('of racing deletes (single-use takes) exactly one wins', async (t) => {
  const { a } = await setup(t);
  await a.set('link:x', 'v', 60_000);
  const results = await Promise.all(Array.from({ length: 8 }, () => a.delete('link:x')));
  t.equal(results.filter(Boolean).length, 1);
});

t.test('keys(prefix) pages through live keys of its prefix only; clear() stays in its namespace', async (t) => {
  const { db, a } = await setup(t);
  for (let i = 0; i < 1203; i++) await a.set(`p_1:k${String(i).padStart(4, '0')}`, 'v');
  await a.set('px1:other', 'v');
  await a.set('p_1:dead', 'v', 60_000);
  await expire(db, 'p_1:dead');
  const keys: string[] = [];
  for await (const k of a.keys('p_1')) keys.push(k);
  t.equal(keys.length, 1203, 'every page, no expired key, no px1 (LIKE _ taken literally)');
  t.equal(new Set(keys).size, 1203, 'no key twice across pages');
  a.namespace = 'p_1';
  await a.clear();
  t.same(await query(db, 'SELECT key FROM credproxy_kv ORDER BY key'), [{ key: 'px1:other' }]);
});
