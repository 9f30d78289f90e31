import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import pino from 'pino';
import type { Settings } from '../../src/config/types.js';
import { keyIdOf } from '../../src/store/keyring.js';
import { openBackend, openStore } from '../../src/store/open.js';
import type { ConnectionStore } from '../../src/store/types.js';
import { CONNECTIONS, expectSame, fill } from '../support/store-data.js';
import { cleanPrefix, REDIS_URL, uniquePrefix } from '../support/redis.js';
import { freshDatabase, pgUrl } from '../support/postgres.js';
import { configDir } from '../support/servers.js';

/**
 * credproxy rekey / export / import as users run them: the built bin (bin/credproxy.js, on
 * the build `npm test` makes first), against the machine's Redis and PostgreSQL.
 */
const built = existsSync(join(process.cwd(), 'dist', 'src', 'cli.js'));

const OLD = Buffer.alloc(32, 31).toString('base64');
const NEW = Buffer.alloc(32, 32).toString('base64');
const PASS = 'a passphrase for the export tests';
const FIXTURE_PASS = 'correct horse battery staple (export fixture)';
const db = await freshDatabase(t);
const PG = pgUrl(db);

interface Ran {
  code: number | null;
  out: string;
  err: string;
}

function run(args: string[], env: NodeJS.ProcessEnv, onErr?: (text: string, kill: (sig: NodeJS.Signals) => void) => void): Promise<Ran> {
  const child = spawn(process.execPath, ['bin/credproxy.js', ...args], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
    onErr?.(err, (sig) => child.kill(sig));
  });
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, out, err })));
}

async function open(t: Test, url: string, prefix: string, env: NodeJS.ProcessEnv): Promise<ConnectionStore> {
  const { store } = await openStore({ store: url, store_prefix: prefix } as Settings, { CREDPROXY_ADMIN_TOKEN: 'admin-token-for-keys-cli', ...env }, pino({ level: 'silent' }));
  t.teardown(() => store.close());
  return store;
}

const cfg = (store: string, prefix: string) => configDir(`store: ${store}\nstore_prefix: ${prefix}\n`);

async function keyIds(url: string, prefix: string): Promise<string[]> {
  const b = await openBackend(url, prefix, pino({ level: 'silent' }));
  const ids: string[] = [];
  try {
    for await (const k of b.keys()) if (k.startsWith('conn:')) ids.push(keyIdOf((JSON.parse((await b.keyv.get(k))!) as { sealed: string }).sealed));
  } finally {
    await b.options.invalidation?.close();
    await b.options.onClose?.();
  }
  return ids.sort();
}

t.test('sqlite → redis → postgres → sqlite through migrate, export and import: every scheme, label and entity token', { skip: built ? false : 'dist/ is not built: run npm test (it builds first)' }, async (t) => {
  const prefix = uniquePrefix();
  t.teardown(() => cleanPrefix(prefix));
  const aDir = cfg('sqlite:PLACEHOLDER', prefix);
  const first = `sqlite:${join(aDir, 'data', 'credproxy.db')}`;
  // The embedded store with its generated data/secret.key, as `npm start` leaves it.
  await fill(await open(t, first, prefix, {}));
  const keyA = readFileSync(join(aDir, 'data', 'secret.key'), 'utf8').trim();

  const m = await run(['migrate', '--from', first, '--to', REDIS_URL, '--prefix', prefix], {});
  t.equal(m.code, 0, m.err);
  const exported = join(aDir, 'from-redis.cpx');
  const e1 = await run(['export', '--config', cfg(REDIS_URL, prefix), '--out', exported], { CREDPROXY_SECRET_KEY: keyA, CREDPROXY_EXPORT_PASSPHRASE: PASS });
  t.equal(e1.code, 0, e1.err);
  t.match(e1.out, /exported 12 connections, 0 sealed .* 2 label indexes, 2 entity token records/);
  t.equal(statSync(exported).mode & 0o777, 0o600, 'the export file is its owner\'s only');
  const fileText = readFileSync(exported, 'utf8');
  // (values long enough not to turn up in base64 by chance)
  for (const c of CONNECTIONS) for (const v of Object.values(c.credentials).filter((v) => v.length >= 5)) t.notOk(fileText.includes(v), `no plaintext ${c.scheme} secret in the file`);
  t.match(JSON.parse(fileText), { format: 'credproxy-export', version: 1, kdf: { name: 'scrypt' }, cipher: 'aes-256-gcm' });

  // Into PostgreSQL under a keyring of its own: import re-seals with the store's newest key.
  const pgEnv = { CREDPROXY_SECRET_KEYS: `pg1:${NEW}`, CREDPROXY_EXPORT_PASSPHRASE: PASS };
  const i1 = await run(['import', '--config', cfg(PG, prefix), exported], pgEnv);
  t.equal(i1.code, 0, i1.err);
  t.match(i1.out, /format version 1.*connections 12 restored, 0 kept.*entity token records 2 restored/);
  t.same(await keyIds(PG, prefix), Array(12).fill('pg1'));
  const pgStore = await open(t, PG, prefix, { CREDPROXY_SECRET_KEYS: `pg1:${NEW}` });
  await expectSame(t, pgStore, 'postgres');
  t.same(JSON.parse((await pgStore.kv.get('stats:connections')) ?? '{}'), { active: 9, expired: 1, failed: 1, initiated: 1 }, 'the counts by status cover what was imported');
  const again = await run(['import', '--config', cfg(PG, prefix), exported], pgEnv);
  t.match(again.out, /connections 0 restored, 12 kept .*entity token records 0 restored, 2 already there/, 'a second import changes nothing');

  const e2Path = join(aDir, 'from-pg.cpx');
  t.equal((await run(['export', '--config', cfg(PG, prefix), '--out', e2Path], pgEnv)).code, 0);
  const bDir = cfg('sqlite:PLACEHOLDER', prefix);
  const last = `sqlite:${join(bDir, 'data', 'credproxy.db')}`;
  const bCfg = configDir(`store: ${last}\nstore_prefix: ${prefix}\n`);
  const i2 = await run(['import', '--config', bCfg, e2Path], { CREDPROXY_EXPORT_PASSPHRASE: PASS });
  t.equal(i2.code, 0, i2.err);
  const b = await open(t, last, prefix, {});
  await expectSame(t, b, 'back in sqlite (its own generated key)');

  // A newer record in the store is kept; an older one is replaced.
  const [alice] = CONNECTIONS;
  await b.put({ ...alice!, credentials: { access_token: 'newer', refresh_token: 'newer-rt' }, updated_at: alice!.updated_at + 1 });
  await b.put({ ...CONNECTIONS[3]!, credentials: { api_key: 'older' }, updated_at: 1 });
  await b.close();
  const i3 = await run(['import', '--config', bCfg, e2Path], { CREDPROXY_EXPORT_PASSPHRASE: PASS });
  t.match(i3.out, /connections 1 restored, 11 kept/);
  const b2 = await open(t, last, prefix, {});
  t.equal((await b2.get(alice!.entity, alice!.integration))?.credentials.access_token, 'newer', 'not overwritten by the older export');
  t.same((await b2.get(CONNECTIONS[3]!.entity, CONNECTIONS[3]!.integration))?.credentials, CONNECTIONS[3]!.credentials, 'the older stored one is restored');

  const wrong = await run(['import', '--config', bCfg, e2Path], { CREDPROXY_EXPORT_PASSPHRASE: 'not it' });
  t.equal(wrong.code, 1);
  t.match(wrong.err, /wrong passphrase, or the export file was changed/);
  const empty = await run(['export', '--config', bCfg, '--out', join(bDir, 'x')], { CREDPROXY_EXPORT_PASSPHRASE: '' });
  t.match(empty, { code: 1, err: /passphrase is empty/ });
  t.notOk(existsSync(join(bDir, 'x')));
  t.match(await run(['export', '--config', bCfg, '--out', join(bDir, 'x')], {}), { code: 1, err: /set CREDPROXY_EXPORT_PASSPHRASE, or run on a terminal/ });
  t.match(await run(['export', '--config', bCfg], {}), { code: 2, err: /--out FILE is required/ });
});

t.test('import of a file made by the previous release (test/fixtures/export-v1.json)', { skip: built ? false : 'dist/ is not built: run npm test (it builds first)' }, async (t) => {
  const prefix = uniquePrefix();
  t.teardown(() => cleanPrefix(prefix));
  const r = await run(['import', '--config', cfg(REDIS_URL, prefix), 'test/fixtures/export-v1.json'], { CREDPROXY_SECRET_KEY: OLD, CREDPROXY_EXPORT_PASSPHRASE: FIXTURE_PASS });
  t.equal(r.code, 0, r.err);
  t.match(r.out, /format version 1, made 2026-/);
  await expectSame(t, await open(t, REDIS_URL, prefix, { CREDPROXY_SECRET_KEY: OLD }), 'from the fixture');
});

t.test('rekey: stopped by --limit, interrupted by SIGINT, rerun to the end; the old key can then be retired', { skip: built ? false : 'dist/ is not built: run npm test (it builds first)' }, async (t) => {
  const prefix = uniquePrefix();
  const dir = cfg(PG, prefix);
  const seed = await open(t, PG, prefix, { CREDPROXY_SECRET_KEY: OLD });
  const N = 400;
  await Promise.all(Array.from({ length: N }, (_, i) => seed.put({ ...CONNECTIONS[3]!, entity: `user${i}`, credentials: { api_key: `key-${i}` } })));
  const ring = { CREDPROXY_SECRET_KEYS: `default:${OLD},k2:${NEW}` };

  const sliced = await run(['rekey', '--config', dir, '--limit', '50'], ring);
  t.equal(sliced.code, 0, sliced.err);
  t.match(sliced.out, /400 connections: \d+ rekeyed/);
  t.match(sliced.out, /stopped at --limit 50: run credproxy rekey again/);
  const afterSlice = (await keyIds(PG, prefix)).filter((id) => id === 'k2').length;
  t.ok(afterSlice > 0 && afterSlice <= 50, `at most 50 re-sealed (${afterSlice})`);

  let sent = false;
  const interrupted = await run(['rekey', '--config', dir, '--progress-every', '10'], ring, (err, kill) => {
    if (!sent && /\d+\/400 looked at/.test(err)) {
      sent = true;
      kill('SIGINT');
    }
  });
  t.match(interrupted.err, /looked at: \d+ rekeyed/, 'a progress line per 10 records when not on a terminal');
  if (interrupted.code === 130) {
    t.match(interrupted.out, /interrupted: run credproxy rekey again/);
    t.ok((await keyIds(PG, prefix)).includes('default'), 'some records are still on the old key');
  } else {
    t.equal(interrupted.code, 0, 'finished before the signal arrived (a fast machine)');
  }

  const rest = await run(['rekey', '--config', dir], ring);
  t.equal(rest.code, 0, rest.err);
  t.match(rest.out, /400 connections: \d+ rekeyed, \d+ already on key "k2"/);
  t.match(rest.out, /every connection is on key "k2": older keys can be retired/);
  t.same(await keyIds(PG, prefix), Array(N).fill('k2'));
  const retired = await open(t, PG, prefix, { CREDPROXY_SECRET_KEYS: `k2:${NEW}` });
  for (const i of [0, 57, 399]) t.equal((await retired.get(`user${i}`, 'stripe'))?.credentials.api_key, `key-${i}`);

  const wrongKey = await run(['rekey', '--config', dir], { CREDPROXY_SECRET_KEY: OLD });
  t.equal(wrongKey.code, 1);
  t.match(wrongKey.err, /open none of 20 stored connections sampled .*"k2" \(20\)/, 'the retired key alone is refused');
  const started = await run(['start', '--config', dir, '--port', '0'], { CREDPROXY_SECRET_KEY: OLD, CREDPROXY_ADMIN_TOKEN: 'admin-token-for-keys-cli' });
  t.equal(started.code, 1);
  t.match(started.err, /Refusing to start, so that a wrong key is not mistaken for an empty store/, 'credproxy start refuses it too');
});
