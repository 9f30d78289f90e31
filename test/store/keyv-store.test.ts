import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Keyv from 'keyv';
import pino from 'pino';
import t from 'tap';
import { KeyvConnectionStore } from '../../src/store/keyv-store.js';
import { dataDirOf, openStore, storageKey } from '../../src/store/open.js';
import { readOrCreateSecret } from '../../src/store/secret-file.js';
import { SqliteAdapter } from '../../src/store/sqlite.js';
import type { Connection } from '../../src/store/types.js';
import { LogCapture } from '../support/servers.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'credproxy-store-'));
const key = Buffer.alloc(32, 9);
const conn = (entity: string, credentials: Record<string, string>): Connection => ({
  entity,
  integration: 'svc',
  scheme: 'bearer',
  params: {},
  status: 'active',
  credentials,
  created_at: 1,
  updated_at: 2,
});

function sqliteStore(path: string) {
  const adapter = new SqliteAdapter(path);
  const keyv = new Keyv<string>({ store: adapter, namespace: 'test', throwOnErrors: true });
  return { adapter, keyv, store: new KeyvConnectionStore(keyv, key, { onClose: () => adapter.disconnect() }) };
}

/** Every byte of every file in `dir` (the database, its WAL and shared-memory files). */
const allBytes = (dir: string) => Buffer.concat(readdirSync(dir).map((f) => readFileSync(join(dir, f))));

t.test('sqlite store: put, get, list, delete; persists; no plaintext secret in any file', async (t) => {
  const dir = tmp();
  const path = join(dir, 'db', 'credproxy.db');
  const secret = 'plaintext-secret-value-1234567890';
  let s = sqliteStore(path);
  await s.store.put(conn('alice', { token: secret }));
  await s.store.put({ ...conn('alice', { token: 'x' }), integration: 'other' });
  t.same((await s.store.get('alice', 'svc'))?.credentials, { token: secret });
  t.same((await s.store.list('alice', ['svc', 'other', 'none'])).map((c) => c.integration), ['svc', 'other']);
  t.equal(allBytes(join(dir, 'db')).includes(secret), false, 'not in the database or its WAL while running');
  await s.store.close();
  t.equal(allBytes(join(dir, 'db')).includes(secret), false, 'not in the file after close');
  t.equal(allBytes(join(dir, 'db')).includes(Buffer.from(secret).toString('base64')), false, 'nor base64-encoded');

  s = sqliteStore(path);
  const again = await s.store.get('alice', 'svc');
  t.same(again?.credentials, { token: secret }, 'reopened from disk');
  t.equal(again?.created_at, 1);
  t.ok(await s.store.delete('alice', 'svc'));
  t.equal(await s.store.get('alice', 'svc'), undefined);
  t.notOk(await s.store.delete('alice', 'svc'), 'deleting twice reports nothing removed');
  await s.store.ping();
  await s.store.close();
  await s.store.close();
  await t.rejects(s.store.ping(), 'a closed store does not answer');
});

t.test('a sealed blob moved to another entity fails to decrypt (AAD)', async (t) => {
  const s = sqliteStore(join(tmp(), 'c.db'));
  t.teardown(() => s.store.close());
  await s.store.put(conn('alice', { token: 'alice-secret' }));
  const raw = await s.keyv.get('conn:alice:svc');
  t.type(raw, 'string');
  await s.keyv.set('conn:mallory:svc', raw!);
  // Shown unreadable (failed, no credentials) rather than thrown, so one record cannot break a listing.
  t.match(await s.store.get('mallory', 'svc'), { status: 'failed', credentials: {}, unreadable: { key_id: 'default' } }, 'alice\'s blob under mallory\'s key does not open');
  // and the same with metadata edited to look like mallory's
  const edited = JSON.stringify({ ...JSON.parse(raw!), entity: 'mallory' });
  await s.keyv.set('conn:mallory:svc', edited);
  t.same((await s.store.get('mallory', 'svc'))?.credentials, {});
});

t.test('the cache serves reads; writes through the store replace it', async (t) => {
  const keyv = new Keyv<string>({ throwOnErrors: true });
  const store = new KeyvConnectionStore(keyv, key);
  await store.put(conn('alice', { token: 'v1' }));
  await keyv.delete('conn:alice:svc');
  t.same((await store.get('alice', 'svc'))?.credentials, { token: 'v1' }, 'served from memory, no backend read');
  await store.put(conn('alice', { token: 'v2' }));
  t.same((await store.get('alice', 'svc'))?.credentials, { token: 'v2' });
  t.ok(Object.isFrozen(await store.get('alice', 'svc')));
  await store.close();
  await t.rejects(store.get('alice', 'svc'), 'a closed store answers nothing, not even from its cache');
});

t.test('kv: get, set with ttl, delete, single-use take', async (t) => {
  const s = sqliteStore(join(tmp(), 'kv.db'));
  t.teardown(() => s.store.close());
  const { kv } = s.store;
  await kv.set('state:1', 'v');
  t.equal(await kv.get('state:1'), 'v');
  t.equal(await kv.take('state:1'), 'v');
  t.equal(await kv.take('state:1'), undefined, 'a second take gets nothing');
  await kv.set('gone', 'v');
  t.ok(await kv.delete('gone'));
  t.equal(await kv.get('gone'), undefined);
  await kv.set('short', 'v', 1);
  // Deliberately outlive the 1 ms TTL: expiry is about time passing.
  await new Promise((r) => setTimeout(r, 10));
  t.equal(await kv.get('short'), undefined, 'expired records are not returned');
  await s.adapter.set('test:old', 'x', 1);
  // As above: outlive the TTL.
  await new Promise((r) => setTimeout(r, 10));
  t.equal(s.adapter.purgeExpired(), 1, 'purgeExpired drops expired rows');
});

t.test('SqliteAdapter: getMany, has, clear within its namespace only', async (t) => {
  const a = new SqliteAdapter(join(tmp(), 'a.db'));
  t.teardown(() => a.disconnect());
  a.namespace = 'n_1';
  await a.set('n_1:a', 'A');
  await a.set('n_1:b', { b: 1 });
  await a.set('nx1:c', 'C');
  t.same(await a.getMany(['n_1:a', 'n_1:b', 'none']), ['A', '{"b":1}', undefined]);
  t.ok(await a.has('n_1:a'));
  await a.clear();
  t.notOk(await a.has('n_1:a'));
  t.ok(await a.has('nx1:c'), '_ in the namespace is not a LIKE wildcard');
  const mem = new SqliteAdapter(':memory:');
  await mem.set('k', 'v');
  t.equal(await mem.get('k'), 'v');
  await mem.disconnect();
});

t.test('storage key: from the environment, else generated once with mode 0600 and a warning', async (t) => {
  const logs = new LogCapture();
  const log = pino(logs);
  const hex = '0a'.repeat(32);
  t.same(storageKey({ CREDPROXY_SECRET_KEY: hex }, undefined, log), Buffer.alloc(32, 10));
  t.throws(() => storageKey({ CREDPROXY_SECRET_KEY: 'short' }, undefined, log), { message: /must be 32 bytes/ });
  t.equal(storageKey({}, undefined, log).length, 32, 'memory store: an ephemeral key');

  const dir = join(tmp(), 'data');
  const k1 = storageKey({ CREDPROXY_SECRET_KEY: '' }, dir, log);
  t.equal(statSync(join(dir, 'secret.key')).mode & 0o777, 0o600);
  t.match(logs.text, /CREDPROXY_SECRET_KEY is not set/);
  t.notMatch(logs.text, new RegExp(k1.toString('base64url')), 'the generated key is not logged');
  t.same(storageKey({}, dir, log), k1, 'read back, not regenerated');
  writeFileSync(join(dir, 'secret.key'), 'garbage\n');
  t.throws(() => storageKey({}, dir, log), { message: /does not hold a 32-byte key/ }, 'never silently replaced');

  const f = join(tmp(), 'x', 'token');
  const first = readOrCreateSecret(f, 24);
  t.ok(first.created);
  t.same(readOrCreateSecret(f, 24), { value: first.value, created: false });
  t.throws(() => readOrCreateSecret(join(f, 'under-a-file')), 'other errors are not swallowed');
});

t.test('openStore picks the backend from store:', async (t) => {
  const log = pino(new LogCapture());
  const settings = (store: string) => ({ store, store_prefix: 'p' }) as Parameters<typeof openStore>[0];
  const dir = tmp();
  t.equal(dataDirOf(settings(`sqlite:${dir}/d/x.db`)), join(dir, 'd'));
  t.equal(dataDirOf(settings('memory')), undefined);
  t.equal(dataDirOf(settings('redis://h:6379')), undefined, 'a shared store keeps no generated secrets on one instance');
  const env = { CREDPROXY_SECRET_KEY: key.toString('hex') };
  const sq = await openStore(settings(`sqlite:${dir}/d/x.db`), env, log);
  t.equal(sq.dataDir, join(dir, 'd'));
  await sq.store.close();
  const mem = await openStore(settings('memory:'), env, log);
  t.equal(mem.dataDir, undefined);
  await mem.store.ping();
  await mem.store.close();
  await t.rejects(openStore(settings('redis://user:pw@h:6379'), env, log), { message: /^store redis:\/\/…@h:6379 / }, 'the password is not repeated');
});

t.test('peek answers from the cache only: never a backend read, nothing once closed or untrusted', async (t) => {
  const keyv = new Keyv<string>({ throwOnErrors: true });
  const writer = new KeyvConnectionStore(keyv, key);
  await writer.put(conn('alice', { token: 'v1' }));
  const store = new KeyvConnectionStore(keyv, key, { cacheTtlMs: 60_000 });
  t.equal(store.peek('alice', 'svc'), undefined, 'not read yet: the cache cannot answer');
  const read = await store.get('alice', 'svc');
  t.equal(store.peek('alice', 'svc'), read, 'after a read: the same object, without waiting');
  t.equal(store.peek('alice', 'svc', 'work'), undefined, 'another label is another entry');
  await store.delete('alice', 'svc');
  t.equal(store.peek('alice', 'svc'), undefined, 'a write through the store drops it');
  const expiring = new KeyvConnectionStore(keyv, key, { cacheTtlMs: 1 });
  await writer.put(conn('bob', { token: 'b' }));
  await expiring.get('bob', 'svc');
  const until = Date.now() + 5;
  while (Date.now() < until); // the 1 ms cache ttl passes (a busy wait of 5 ms, bounded)
  t.equal(expiring.peek('bob', 'svc'), undefined, 'past the cache ttl: get must read again');
  await store.get('bob', 'svc');
  await store.close();
  t.equal(store.peek('bob', 'svc'), undefined, 'a closed store answers nothing');
  await writer.close();
  await expiring.close();
});
