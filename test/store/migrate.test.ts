import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import pino from 'pino';
import { runMigrateCommand } from '../../src/cli/migrate.js';
import type { Settings } from '../../src/config/types.js';
import { openStore } from '../../src/store/open.js';
import { parseConnKey } from '../../src/store/migrate.js';
import type { Connection, ConnectionStore } from '../../src/store/types.js';
import { SECRET_KEY } from '../support/servers.js';
import { cleanPrefix, REDIS_URL } from '../support/redis.js';
import { freshDatabase, pgUrl } from '../support/postgres.js';
import { recordKeys } from '../support/store-data.js';

const log = pino({ level: 'silent' });
const PREFIX = `mig-${process.pid}`;
const env = { CREDPROXY_SECRET_KEY: SECRET_KEY, CREDPROXY_ADMIN_TOKEN: 'admin-token-for-migrate-tests' };
const db = await freshDatabase(t);
t.teardown(() => cleanPrefix(PREFIX));

async function open(t: { teardown(fn: () => unknown): void }, url: string, e: NodeJS.ProcessEnv = env): Promise<ConnectionStore> {
  const { store } = await openStore({ store: url, store_prefix: PREFIX } as Settings, e, log);
  t.teardown(() => store.close());
  return store;
}

async function migrate(from: string, to: string, e: NodeJS.ProcessEnv = env): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runMigrateCommand(['migrate', '--from', from, '--to', to, '--prefix', PREFIX], {
    stdout: (s) => (out += s),
    stderr: (s) => (err += s),
    env: e,
    readStdin: async () => '',
  });
  return { code, out, err };
}


const now = Date.now();
const CONNECTIONS: Connection[] = [
  { entity: 'alice@example.com', integration: 'github', scheme: 'oauth2', params: {}, status: 'active', credentials: { access_token: 'gho_a', refresh_token: 'ghr_a' }, expires_at: now + 3_600_000, scopes: ['repo'], created_at: 1, updated_at: 2 },
  { entity: 'alice@example.com', integration: 'github', label: 'work', scheme: 'oauth2', params: {}, status: 'active', credentials: { access_token: 'gho_w', refresh_token: 'ghr_w' }, created_at: 1, updated_at: 3 },
  { entity: 'alice@example.com', integration: 'github', label: 'me:personal', scheme: 'oauth2', params: {}, status: 'expired', reason: 'refresh refused: invalid_grant', credentials: { access_token: 'x' }, created_at: 1, updated_at: 4 },
  { entity: 'team:ops', integration: 'stripe', scheme: 'api_key', params: { account: 'acct_1' }, status: 'active', credentials: { api_key: 'sk_live_1' }, created_at: 5, updated_at: 6 },
  { entity: 'bob', integration: 'jira', scheme: 'basic', params: { site: 'bob' }, status: 'active', credentials: { username: 'bob', password: 'pw' }, created_at: 7, updated_at: 8 },
  { entity: 'carol', integration: 'aws', scheme: 'sigv4', params: { region: 'eu-west-1' }, status: 'failed', credentials: { access_key_id: 'AKIA', secret_access_key: 's' }, created_at: 9, updated_at: 10 },
];

async function fill(s: ConnectionStore): Promise<void> {
  for (const c of CONNECTIONS) await s.put(c);
  await s.kv.set('etok:hash:0123abcd', JSON.stringify({ entity: 'alice@example.com', id: 't1' }));
  await s.kv.set('etok:id:t1', '0123abcd');
  await s.kv.set('link:abc', JSON.stringify({ entity: 'bob' }), 3_600_000);
}

async function expectSame(t: Test, s: ConnectionStore, what: string): Promise<void> {
  const listed = await s.list('alice@example.com', ['github']);
  t.same(listed.map((c) => c.label ?? ''), ['', 'me:personal', 'work'], `${what}: labels listed through the copied index`);
  for (const c of CONNECTIONS) t.same(await s.get(c.entity, c.integration, { fresh: true, label: c.label }), c, `${what}: ${c.entity} ${c.integration} ${c.label ?? ''}`);
  t.same(JSON.parse((await s.kv.get('etok:hash:0123abcd')) ?? 'null'), { entity: 'alice@example.com', id: 't1' }, `${what}: entity token hash`);
  t.equal(await s.kv.get('link:abc'), JSON.stringify({ entity: 'bob' }), `${what}: a link, with its ttl`);
}

t.test('sqlite → redis → postgres → sqlite: every connection, label index and entity token survives, sealed throughout', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'credproxy-migrate-'));
  const first = `sqlite:${join(dir, 'a', 'credproxy.db')}`;
  const last = `sqlite:${join(dir, 'b', 'credproxy.db')}`;
  const pg = pgUrl(db);
  const src = await open(t, first);
  await fill(src);
  const want = await recordKeys(first, PREFIX);
  t.equal(want.filter((k) => k.startsWith('conn:')).length, CONNECTIONS.length);

  for (const [from, to] of [[first, REDIS_URL], [REDIS_URL, pg], [pg, last]] as const) {
    const r = await migrate(from, to);
    t.equal(r.code, 0, `${from} → ${to}: ${r.err}`);
    t.match(r.out, `copied ${CONNECTIONS.length} connections, 1 label indexes, `);
    t.match(r.out, /5 connections decrypted on both sides and equal/);
    t.same(await recordKeys(to, PREFIX), want, `${to} holds every record`);
  }
  await expectSame(t, await open(t, pg), 'postgres');
  await expectSame(t, await open(t, last), 'sqlite at the end');
  const { rows } = await import('pg').then(async ({ default: pgm }) => {
    const c = new pgm.Client({ connectionString: pg });
    await c.connect();
    try {
      return await c.query<{ value: string }>('SELECT value FROM credproxy_kv');
    } finally {
      await c.end();
    }
  });
  t.notMatch(rows.map((r) => r.value).join('\n'), /sk_live_1|gho_a|ghr_w/, 'no credential in clear in the database');
});

t.test('the source keeps serving during the copy; a second run catches up', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'credproxy-migrate-'));
  const from = `sqlite:${join(dir, 'live.db')}`;
  const fresh = await freshDatabase(t);
  const to = pgUrl(fresh);
  const src = await open(t, from);
  for (let i = 0; i < 300; i++) await src.put({ ...CONNECTIONS[3]!, entity: `user-${i}`, credentials: { api_key: `k-${i}` } });
  let writes = 0;
  let stop = false;
  const writer = (async () => {
    while (!stop) {
      await src.put({ ...CONNECTIONS[3]!, entity: `late-${writes}`, credentials: { api_key: `late-${writes}` } });
      await src.put({ ...CONNECTIONS[3]!, entity: 'user-0', credentials: { api_key: `rotated-${writes}` }, updated_at: 100 + writes });
      writes++;
      // A proxy's pace, not a tight loop (better-sqlite3 answers synchronously: that would starve the copy).
      await new Promise((r) => setTimeout(r, 2));
    }
  })();
  const r1 = await migrate(from, to);
  stop = true;
  await writer;
  t.equal(r1.code, 0, r1.err);
  t.ok(writes > 0, `the source took ${writes} rounds of writes during the copy`);
  const r2 = await migrate(from, to);
  t.equal(r2.code, 0, r2.err);
  t.same(await recordKeys(to, PREFIX), await recordKeys(from, PREFIX), 'after the second run the destination holds every record');
  const dst = await open(t, to);
  t.equal((await dst.get('user-0', 'stripe', { fresh: true }))?.credentials.api_key, `rotated-${writes - 1}`, 'with the latest value');
});

t.test('a wrong key is refused before anything is copied; an SQLite pair carries its key file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'credproxy-migrate-'));
  const from = `sqlite:${join(dir, 'src', 'credproxy.db')}`;
  // The source generated its own key (no CREDPROXY_SECRET_KEY): the embedded default.
  const src = await open(t, from, {});
  await src.put(CONNECTIONS[4]!);
  const fresh = await freshDatabase(t);
  const wrong = await migrate(from, pgUrl(fresh), { CREDPROXY_SECRET_KEY: SECRET_KEY });
  t.equal(wrong.code, 1);
  t.match(wrong.err, /storage key does not open the source's connection conn:bob:jira/);
  t.same(await recordKeys(pgUrl(fresh), PREFIX), [], 'nothing copied');

  const to = `sqlite:${join(dir, 'dst', 'credproxy.db')}`;
  const ok = await migrate(from, to, {});
  t.equal(ok.code, 0, ok.err);
  t.equal(readFileSync(join(dir, 'dst', 'secret.key'), 'utf8'), readFileSync(join(dir, 'src', 'secret.key'), 'utf8'), 'the destination gets the key file');
  t.same(await (await open(t, to, {})).get('bob', 'jira'), CONNECTIONS[4], 'a proxy on the destination opens the copy');
  const shared = await migrate(from, pgUrl(fresh), {});
  t.equal(shared.code, 0, shared.err);
  t.match(shared.out, /need CREDPROXY_SECRET_KEY set to the key in .*src\/secret\.key/);
  t.notMatch(shared.out + shared.err, readFileSync(join(dir, 'src', 'secret.key'), 'utf8').trim(), 'the key itself is never printed');

  t.equal((await migrate(from, from)).code, 2);
  t.equal((await migrate(from, 'mysql://x')).code, 2);
});

t.test('connection keys parse back to their parts', async (t) => {
  t.same(parseConnKey('conn:team:ops:stripe'), { entity: 'team:ops', integration: 'stripe' });
  t.same(parseConnKey('conn:a@b.c:github/me:personal'), { entity: 'a@b.c', integration: 'github', label: 'me:personal' });
  t.equal(parseConnKey('conn:nocolon'), undefined);
});
