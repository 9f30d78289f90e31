import { chmodSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { SqliteAdapter } from '../../src/store/sqlite.js';

// The connection store on top of it is in test/store/keyv-store.test.ts; this is the adapter.
function tmp(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'credproxy-sqlite-adapter-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function open(t: Test, path: string): SqliteAdapter {
  const a = new SqliteAdapter(path);
  t.teardown(() => a.disconnect());
  return a;
}

t.test('values persist across a reopen of the file; objects are stored as JSON', async (t) => {
  const path = join(tmp(t), 'data', 'credproxy.db');
  const a = new SqliteAdapter(path);
  await a.set('n:a', 'text');
  await a.set('n:b', { x: 1 });
  await a.set('n:a', 'replaced');
  await a.disconnect();
  await a.disconnect();
  const b = open(t, path);
  t.equal(await b.get('n:a'), 'replaced');
  t.equal(await b.get('n:b'), '{"x":1}');
  t.ok(await b.delete('n:a'));
  t.notOk(await b.delete('n:a'), 'a second delete deletes nothing');
  t.notOk(await b.has('n:a'));
});

t.test('the file, its folder and its WAL are private, even an older file left 0644', async (t) => {
  const dir = join(tmp(t), 'data');
  const a = open(t, join(dir, 'credproxy.db'));
  await a.set('k', 'v');
  t.equal(statSync(dir).mode & 0o777, 0o700);
  for (const f of readdirSync(dir)) t.equal(statSync(join(dir, f)).mode & 0o077, 0, `${f} is not readable by others`);
  const old = join(tmp(t), 'old.db');
  writeFileSync(old, '');
  chmodSync(old, 0o644);
  open(t, old);
  t.equal(statSync(old).mode & 0o777, 0o600);
});

t.test('expired rows are not returned, and purgeExpired drops them', async (t) => {
  const a = open(t, join(tmp(t), 'x.db'));
  await a.set('gone', 'v', 1);
  await a.set('kept', 'v', 3_600_000);
  await a.set('forever', 'v');
  // Deliberately outlive the 1 ms ttl: expiry is about time passing.
  await new Promise((r) => setTimeout(r, 10));
  t.equal(a.purgeExpired(), 1);
  t.equal(await a.get('gone'), undefined);
  t.equal(await a.get('kept'), 'v');
  t.equal(await a.get('forever'), 'v');
});

t.test('keys(prefix) and clear() stay inside their prefix, LIKE wildcards in it taken literally', async (t) => {
  const a = open(t, join(tmp(t), 'x.db'));
  for (const k of ['p_1:a', 'p_1:b', 'px1:c', 'p_10:d', 'p%:e']) await a.set(k, 'v');
  const keys = async (p: string) => {
    const out: string[] = [];
    for await (const k of a.keys(p)) out.push(k);
    return out;
  };
  t.same(await keys('p_1'), ['p_1:a', 'p_1:b'], '_ is not "any character"');
  t.same(await keys('p%'), ['p%:e'], '% is not "anything"');
  a.namespace = 'p_1';
  await a.clear();
  t.same(await keys('p_1'), []);
  t.same(await keys('px1'), ['px1:c'], 'other namespaces untouched');
  t.same(await keys('p_10'), ['p_10:d']);
});

t.test(':memory: works without touching the file system', async (t) => {
  const a = open(t, ':memory:');
  await a.set('k', 'v');
  t.same(await a.getMany(['k', 'missing']), ['v', undefined]);
});
