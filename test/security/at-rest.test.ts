import { mkdtempSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import t from 'tap';
import { ADMIN, configDir, startProxy, startUpstream, viaProxy } from '../support/servers.js';

/**
 * Credentials at rest: sealed in the embedded store, bound to their entity, and a record that
 * was tampered with or moved is never used (424, shown failed with the reason), and a store
 * opened with another key is refused at start rather than taken for an empty one.
 */
const ALICE = 'alice-at-rest-token-5e1f';
const BOB = 'bob-at-rest-token-77aa0';

t.test('the sqlite store holds no credential in clear, and a tampered record is never used', async (t) => {
  const up = await startUpstream();
  t.teardown(() => up.close());
  const data = mkdtempSync(join(tmpdir(), 'credproxy-data-'));
  const db = join(data, 'store.db');
  const dir = configDir(`store: "sqlite:${db}"\n`, { demo: `hosts: ["127.0.0.1:${up.port}"]\nupstream: http\nauth: { type: bearer }\n` });
  // startProxy's env replaces its defaults whole, so the admin token is passed again.
  const env = { CREDPROXY_ADMIN_TOKEN: ADMIN, CREDPROXY_SECRET_KEY: '' };

  let proxy = await startProxy(dir, { env });
  const keyFile = join(data, 'secret.key');
  t.equal(statSync(keyFile).mode & 0o777, 0o600, 'the generated storage key is readable by its owner only');
  t.equal((await proxy.connect('alice', 'demo', { credentials: { token: ALICE } })).status, 200);
  t.equal((await proxy.connect('bob', 'demo', { credentials: { token: BOB } })).status, 200);
  await proxy.close();
  for (const f of readdirSync(data)) {
    const bytes = readFileSync(join(data, f)).toString('latin1');
    t.notMatch(bytes, ALICE, `${f} does not hold the credential in clear`);
  }

  // Move alice's sealed record onto bob's key: the entity is bound into the seal.
  const sql = new Database(db);
  const rows = sql.prepare('SELECT key, value FROM keyv').all() as Array<{ key: string; value: string }>;
  const aliceRow = rows.find((r) => r.key.endsWith('conn:alice:demo'));
  const bobRow = rows.find((r) => r.key.endsWith('conn:bob:demo'));
  t.ok(aliceRow && bobRow, 'both records are in the store');
  sql.prepare('UPDATE keyv SET value = ? WHERE key = ?').run(aliceRow!.value, bobRow!.key);
  sql.close();

  proxy = await startProxy(dir, { env });
  t.teardown(() => proxy.close());
  const moved = await viaProxy(proxy.port, `${up.origin}/x`, { headers: { 'X-Entity-Id': 'bob' } });
  t.equal(moved.status, 424);
  t.equal(moved.headers['x-credproxy-error'], 'connection_missing');
  t.match(moved.body.toString(), /sealed with key \\"default\\", but that key does not open them/);
  t.equal(up.seen.length, 0, "alice's credential was not sent for bob");
  const ok = await viaProxy(proxy.port, `${up.origin}/x`, { headers: { 'X-Entity-Id': 'alice' } });
  t.equal(ok.status, 200, "alice's own record still opens");
  t.equal(up.seen.at(-1)?.headers.authorization, `Bearer ${ALICE}`);
  t.notMatch(proxy.logs.text, ALICE);
});

t.test('a different storage key is refused at start, as is a malformed key', async (t) => {
  const up = await startUpstream();
  t.teardown(() => up.close());
  const data = mkdtempSync(join(tmpdir(), 'credproxy-data-'));
  const dir = configDir(`store: "sqlite:${join(data, 'store.db')}"\n`, { demo: `hosts: ["127.0.0.1:${up.port}"]\nupstream: http\nauth: { type: bearer }\n` });
  const first = await startProxy(dir, { env: { CREDPROXY_ADMIN_TOKEN: ADMIN, CREDPROXY_SECRET_KEY: Buffer.alloc(32, 1).toString('hex') } });
  await first.connect('alice', 'demo', { credentials: { token: ALICE } });
  await first.close();
  await t.rejects(
    startProxy(dir, { env: { CREDPROXY_ADMIN_TOKEN: ADMIN, CREDPROXY_SECRET_KEY: Buffer.alloc(32, 2).toString('base64') } }),
    /open none of 1 stored connections sampled.*Refusing to start/,
  );
  t.equal(up.seen.length, 0);
  await t.rejects(startProxy(dir, { env: { CREDPROXY_ADMIN_TOKEN: ADMIN, CREDPROXY_SECRET_KEY: 'too-short' } }), /CREDPROXY_SECRET_KEY must be 32 bytes/);
});
