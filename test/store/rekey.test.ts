import t, { type Test } from 'tap';
import pino from 'pino';
import type { Settings } from '../../src/config/types.js';
import { keyIdOf } from '../../src/store/keyring.js';
import { KeyvConnectionStore } from '../../src/store/keyv-store.js';
import { lockedUpdate, WriteBack } from '../../src/store/locked-update.js';
import { openBackend, openStore, type Backend } from '../../src/store/open.js';
import { rekeyStore } from '../../src/store/rekey.js';
import type { Connection, ConnectionStore } from '../../src/store/types.js';
import { LogCapture } from '../support/servers.js';
import { cleanPrefix, REDIS_URL, uniquePrefix } from '../support/redis.js';
import { freshDatabase, pgUrl } from '../support/postgres.js';

const OLD = Buffer.alloc(32, 21).toString('base64');
const NEW = Buffer.alloc(32, 22).toString('base64');
const OTHER = Buffer.alloc(32, 23).toString('base64');
const single = { CREDPROXY_SECRET_KEY: OLD, CREDPROXY_ADMIN_TOKEN: 'admin-token-for-rekey-tests' };
const ring = { CREDPROXY_SECRET_KEYS: `default:${OLD},k2:${NEW}`, CREDPROXY_ADMIN_TOKEN: 'admin-token-for-rekey-tests' };
const onlyNew = { CREDPROXY_SECRET_KEYS: `k2:${NEW}`, CREDPROXY_ADMIN_TOKEN: 'admin-token-for-rekey-tests' };

const EXPIRES = Date.now() + 3_600_000;
const db = await freshDatabase(t);
const PG = pgUrl(db);

async function open(t: Test, url: string, prefix: string, env: NodeJS.ProcessEnv, logs = new LogCapture()): Promise<ConnectionStore> {
  const { store } = await openStore({ store: url, store_prefix: prefix } as Settings, { CREDPROXY_ADMIN_TOKEN: 'admin-token-for-rekey-tests', ...env }, pino({ level: 'debug' }, logs));
  t.teardown(() => store.close());
  return store;
}

async function backendOf(t: Test, url: string, prefix: string): Promise<Backend> {
  const b = await openBackend(url, prefix, pino({ level: 'silent' }));
  t.teardown(async () => {
    await b.options.invalidation?.close();
    await b.options.onClose?.();
  });
  return b;
}

const conn = (entity: string, n: number, label?: string): Connection => ({
  entity,
  integration: 'github',
  ...(label ? { label } : {}),
  scheme: 'oauth2',
  params: {},
  status: 'active',
  credentials: { access_token: `at-${entity}-${n}`, refresh_token: `rt-${entity}-${n}` },
  expires_at: EXPIRES,
  created_at: 1,
  updated_at: 1_000 + n,
});

async function keyIds(b: Backend): Promise<string[]> {
  const ids: string[] = [];
  for await (const k of b.keys()) if (k.startsWith('conn:')) ids.push(keyIdOf((JSON.parse((await b.keyv.get(k))!) as { sealed: string }).sealed));
  return ids.sort();
}

for (const [name, url] of [['PostgreSQL', PG], ['Redis', REDIS_URL]] as const) {
  t.test(`${name}: rekey in slices (--limit), rerun skips what is done, then only the new key is needed`, async (t) => {
    const prefix = uniquePrefix();
    t.teardown(() => cleanPrefix(prefix));
    const before = await open(t, url, prefix, single);
    for (let i = 0; i < 7; i++) await before.put(conn(`user${i}`, 0, i % 3 === 0 ? 'work' : undefined));
    const b = await backendOf(t, url, prefix);
    t.same(await keyIds(b), Array(7).fill('default'), 'records sealed today carry no id: key "default"');

    const withRing = await open(t, url, prefix, ring);
    const store = withRing as KeyvConnectionStore;
    const first = await rekeyStore(store, b, { limit: 3, concurrency: 1 });
    t.match(first, { total: 7, rekeyed: 3, left: 4 }, 'stops at the limit');
    t.same((await keyIds(b)).filter((id) => id === 'k2').length, 3);
    const second = await rekeyStore(store, b);
    t.match(second, { total: 7, rekeyed: 4, current: 3, left: 0, unreadable: 0 }, 'the rerun skips the records already on k2');
    const third = await rekeyStore(store, b);
    t.match(third, { rekeyed: 0, current: 7 }, 'nothing left to do');

    const retired = await open(t, url, prefix, onlyNew);
    for (let i = 0; i < 7; i++) {
      const c = conn(`user${i}`, 0, i % 3 === 0 ? 'work' : undefined);
      t.same(await retired.get(c.entity, 'github', { label: c.label, fresh: true }), c, `user${i}: unchanged, opened with k2 alone`);
    }
  });
}

t.test('PostgreSQL: rekey while another instance keeps refreshing never stores stale credentials', async (t) => {
  const prefix = uniquePrefix();
  const seed = await open(t, PG, prefix, single);
  const N = 30;
  for (let i = 0; i < N; i++) await seed.put(conn(`u${i}`, 0));
  // The serving instance already holds both keys (rotation step 1), and refreshes throughout.
  const serving = await open(t, PG, prefix, ring);
  const writeBack = new WriteBack(serving, undefined);
  t.teardown(() => writeBack.close());
  const last = new Map<string, number>();
  let stop = false;
  const refresher = (async () => {
    for (let round = 1; !stop; round++) {
      for (let i = 0; i < N && !stop; i += 3) {
        const entity = `u${(i + round) % N}`;
        const r = await lockedUpdate(serving, entity, 'github', { needed: () => true, update: async (c) => ({ ...conn(entity, round), created_at: c.created_at, updated_at: Date.now() }) }, { writeBack });
        if (r.updated && r.persisted) last.set(entity, round);
      }
    }
  })();
  const rekeyer = await open(t, PG, prefix, ring);
  const b = await backendOf(t, PG, prefix);
  const report = await rekeyStore(rekeyer as KeyvConnectionStore, b, { concurrency: 4 });
  stop = true;
  await refresher;
  t.equal(report.rekeyed + report.current + report.changed, N, `every record accounted for: ${JSON.stringify(report)}`);
  t.ok(last.size > 0, 'refreshes ran during the rekey');
  const rerun = await rekeyStore(rekeyer as KeyvConnectionStore, b);
  t.match(rerun, { rekeyed: 0, current: N }, 'all on the newest key (refreshes write with it too)');
  const reader = await open(t, PG, prefix, onlyNew);
  for (let i = 0; i < N; i++) {
    const got = await reader.get(`u${i}`, 'github', { fresh: true });
    const round = last.get(`u${i}`) ?? 0;
    t.equal(got?.credentials.access_token, `at-u${i}-${round}`, `u${i}: the last refresh (round ${round}) is what is stored`);
  }
});

t.test('an unknown key is reported in the listing and the log; a keyring that opens nothing is refused at start', async (t) => {
  const prefix = uniquePrefix();
  const a = await open(t, PG, prefix, { CREDPROXY_SECRET_KEYS: `default:${OLD},k2:${NEW}` });
  await a.put(conn('alice', 1));
  await a.put(conn('alice', 2, 'work'));
  const b = await backendOf(t, PG, prefix);
  const legacy = new KeyvConnectionStore(b.keyv, Buffer.from(OLD, 'base64'));
  await legacy.put(conn('bob', 1));

  // k2 retired too early: alice's records are sealed with it, bob's with default.
  const logs = new LogCapture();
  const early = await open(t, PG, prefix, { CREDPROXY_SECRET_KEY: OLD }, logs);
  const listed = await early.list('alice', ['github']);
  t.same(listed.map((c) => [c.label ?? '', c.status, c.unreadable?.key_id]), [['', 'failed', 'k2'], ['work', 'failed', 'k2']], 'listed, not thrown');
  t.match(listed[0]!.reason, /sealed with key "k2", which is not in the keyring \(keyring: default\)/);
  t.same(listed[0]!.credentials, {});
  t.equal((await early.get('bob', 'github'))?.credentials.access_token, 'at-bob-1', 'what the ring opens is served');
  await t.rejects(early.put(listed[0]!), /cannot be rewritten/, 'an unreadable connection is never written back empty');
  const warn = logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.key_id === 'k2');
  t.same(warn.map((l) => [l.entity, l.integration, l.label]), [['alice', 'github', undefined], ['alice', 'github', 'work']], 'one warning per connection, naming it and the key id');
  t.notMatch(logs.text, NEW, 'no key in the log');
  t.notMatch(logs.text, 'at-alice', 'no credential in the log');
  await early.list('alice', ['github']);
  t.equal(logs.lines.filter((l) => l.includes('"key_id":"k2"')).length, 2, 'not repeated per read');

  await t.rejects(
    openStore({ store: PG, store_prefix: prefix } as Settings, { CREDPROXY_SECRET_KEY: OTHER, CREDPROXY_ADMIN_TOKEN: 'x' }, pino({ level: 'silent' })),
    /storage keys open none of 3 stored connections sampled .*"k2" \(2\).*this keyring holds "default"\).*Refusing to start/,
    'a wrong key is not mistaken for an empty store',
  );
  const empty = await open(t, PG, uniquePrefix(), { CREDPROXY_SECRET_KEY: OTHER });
  t.same(await empty.list('alice', ['github']), [], 'an empty store starts with any key');
});
