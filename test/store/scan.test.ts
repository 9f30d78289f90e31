import t from 'tap';
import pino from 'pino';
import Keyv from 'keyv';
import type { Settings } from '../../src/config/types.js';
import { KeyvConnectionStore } from '../../src/store/keyv-store.js';
import { openStore } from '../../src/store/open.js';
import { decodeCursor, encodeCursor, parseConnKey, SCAN_BUDGET, SCAN_PAGE_MAX, ScanCursorError } from '../../src/store/scan.js';
import type { Connection, ConnectionStore, ConnectionSummary } from '../../src/store/types.js';
import { SECRET_KEY } from '../support/servers.js';
import { cleanPrefix, REDIS_URL, uniquePrefix } from '../support/redis.js';
import { freshDatabase, pgUrl } from '../support/postgres.js';
import { sqliteUrl } from '../support/sqlite.js';
import { CONNECTIONS, fill } from '../support/store-data.js';

const log = pino({ level: 'silent' });
const env = { CREDPROXY_SECRET_KEY: SECRET_KEY, CREDPROXY_ADMIN_TOKEN: 'admin-token-for-scan-tests' };

const db = await freshDatabase(t);

type Tap = { teardown(fn: () => unknown): void };

/** The same tests on every backend, each under a prefix of its own (Redis and PostgreSQL are shared). */
const BACKENDS: Array<[string, (t: Tap, prefix: string) => string]> = [
  ['memory', () => 'memory'],
  ['sqlite', (t) => sqliteUrl(t)],
  ['redis', (t, prefix) => {
    t.teardown(() => cleanPrefix(prefix));
    return REDIS_URL;
  }],
  ['postgres', () => pgUrl(db)],
];

async function open(t: Tap, url: string, prefix: string): Promise<ConnectionStore> {
  const { store } = await openStore({ store: url, store_prefix: prefix } as Settings, env, log);
  t.teardown(() => store.close());
  return store;
}

const id = (c: Pick<ConnectionSummary, 'entity' | 'integration' | 'label'>) => `${c.entity}|${c.integration}|${c.label ?? ''}`;
const ids = (cs: ReadonlyArray<Pick<ConnectionSummary, 'entity' | 'integration' | 'label'>>) => cs.map(id).sort();

/** Every page until the walk ends (with a bound, so a cursor that never ends fails the test). */
async function all(store: ConnectionStore, opts: Parameters<ConnectionStore['scan']>[0] = {}) {
  const items: ConnectionSummary[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = await store.scan({ ...opts, cursor });
    items.push(...page.items);
    cursor = page.next;
    if (++pages > 1000) throw new Error('the walk does not end');
  } while (cursor);
  return { items, pages };
}

for (const [name, urlOf] of BACKENDS) {
  t.test(`${name}: every connection is listed once across pages, metadata only, other records and prefixes left out`, async (t) => {
    const prefix = uniquePrefix();
    const url = urlOf(t, prefix);
    const store = await open(t, url, prefix);
    await fill(store);
    // A neighbour on the same backend under another prefix, and kv records: never listed.
    const otherPrefix = `${prefix}x`;
    if (name === 'redis') t.teardown(() => cleanPrefix(otherPrefix));
    if (name !== 'memory' && name !== 'sqlite') {
      const other = await open(t, url, otherPrefix);
      await other.put({ ...CONNECTIONS[0]!, entity: 'neighbour' });
    }
    await store.kv.set('conn-look-alike', 'x');

    const whole = await all(store, { limit: 1000 });
    t.same(ids(whole.items), ids(CONNECTIONS), 'each stored connection, labelled ones included');
    const alice = whole.items.find((c) => c.entity === 'alice@example.com' && c.label === 'me:personal');
    t.same(alice, { entity: 'alice@example.com', integration: 'github', label: 'me:personal', scheme: 'oauth2', status: 'expired', reason: 'refresh refused: invalid_grant', updated_at: 1_700_000_000_004 });
    t.notMatch(JSON.stringify(whole.items), /gho_|sk_live|s3cr3t|PRIVATE KEY|lin_api/, 'no credential in a listing');

    const paged = await all(store, { limit: 2 });
    t.same(ids(paged.items), ids(CONNECTIONS), 'pages of 2 add up to the same set');
    if (name === 'redis') t.ok(paged.pages >= 1, 'Redis pages follow SCAN batches');
    else {
      t.equal(paged.pages, Math.ceil(CONNECTIONS.length / 2), 'ordered backends fill every page');
      t.equal(new Set(paged.items.map(id)).size, CONNECTIONS.length, 'and never repeat one');
      t.same(paged.items.map(id), [...paged.items.map(id)].sort((a, b) => (a < b ? -1 : 1)).map((x) => x), 'in key order');
    }
  });

  t.test(`${name}: filters by integration, status and label`, async (t) => {
    const prefix = uniquePrefix();
    const store = await open(t, urlOf(t, prefix), prefix);
    await fill(store);
    // An entity whose id ends like an integration, and a label holding ":github": not github's.
    await store.put({ entity: 'x:github', integration: 'jira', scheme: 'basic', params: {}, status: 'active', credentials: { username: 'u', password: 'p' }, created_at: 1, updated_at: 2 });
    await store.put({ entity: 'bob', integration: 'linear', label: 'me:github', scheme: 'bearer', params: {}, status: 'active', credentials: { token: 't' }, created_at: 1, updated_at: 2 });

    const github = await all(store, { integration: 'github', limit: 1 });
    t.same(ids(github.items), ['alice@example.com|github|', 'alice@example.com|github|me:personal', 'alice@example.com|github|work']);
    t.same(ids((await all(store, { integration: 'jira' })).items), ['bob|jira|', 'x:github|jira|']);
    t.same(ids((await all(store, { status: 'expired' })).items), ['alice@example.com|github|me:personal']);
    t.same(ids((await all(store, { integration: 'zendesk', status: 'initiated' })).items), ['erin|zendesk|other']);
    t.same(ids((await all(store, { label: 'work' })).items), ['alice@example.com|github|work']);
    t.same(ids((await all(store, { integration: 'zendesk', label: '' })).items), [], 'label "" is the default connection only');
    t.same(ids((await all(store, { integration: 'nothing' })).items), []);
  });

  t.test(`${name}: a page is bounded, and a cursor from elsewhere is refused`, async (t) => {
    const prefix = uniquePrefix();
    const store = await open(t, urlOf(t, prefix), prefix);
    const conns: Connection[] = Array.from({ length: 260 }, (_, i) => ({
      entity: `user-${String(i).padStart(3, '0')}`, integration: i % 2 ? 'odd' : 'even', scheme: 'bearer', params: {}, status: 'active', credentials: { token: `t${i}` }, created_at: 1, updated_at: 2,
    }));
    for (let i = 0; i < conns.length; i += 20) await Promise.all(conns.slice(i, i + 20).map((c) => store.put(c)));
    const page = await store.scan({ limit: 10_000 });
    t.ok(page.items.length <= SCAN_PAGE_MAX + (name === 'redis' ? 500 : 0), `at most ${SCAN_PAGE_MAX} in a page (Redis: one SCAN batch more)`);
    if (name !== 'redis') {
      t.equal(page.items.length, SCAN_PAGE_MAX);
      t.ok(page.next, 'and the rest is a page away');
    }
    t.same(ids((await all(store, { integration: 'odd', limit: 50 })).items), ids(conns.filter((c) => c.integration === 'odd')));
    t.equal((await all(store, { limit: 0 })).items.length, 260, 'a limit below 1 is taken as 1 a page');
    await t.rejects(store.scan({ cursor: 'not a cursor!' }), ScanCursorError);
    if (name === 'redis') await t.rejects(store.scan({ cursor: encodeCursor('conn:alice') }), ScanCursorError, 'Redis takes only its own numeric cursors');
  });
}

t.test('a store on a plain keyv Map lists too; cursors and keys round-trip', async (t) => {
  const store = new KeyvConnectionStore(new Keyv<string>(), Buffer.from(SECRET_KEY, 'base64'));
  await fill(store);
  t.same(ids((await all(store, { limit: 3 })).items), ids(CONNECTIONS));
  t.equal(decodeCursor(encodeCursor('conn:a:b/c')), 'conn:a:b/c');
  t.equal(decodeCursor(''), undefined);
  t.same(parseConnKey('conn:team:ops:stripe'), { entity: 'team:ops', integration: 'stripe' });
  t.same(parseConnKey('conn:alice:github/me:work'), { entity: 'alice', integration: 'github', label: 'me:work' });
  t.equal(parseConnKey('conn:nocolon'), undefined);
});

t.test('a filter that matches rarely stops at the budget of keys examined, with a cursor to go on', async (t) => {
  const store = new KeyvConnectionStore(new Keyv<string>({ namespace: 'credproxy' }), Buffer.from(SECRET_KEY, 'base64'));
  const base = { scheme: 'bearer', params: {}, status: 'active' as const, credentials: { token: 't' }, created_at: 1, updated_at: 2 };
  for (let i = 0; i < SCAN_BUDGET + 100; i++) await store.put({ ...base, entity: `busy-${String(i).padStart(5, '0')}`, integration: 'busy' });
  await store.put({ ...base, entity: 'zz-last', integration: 'rare' });
  const first = await store.scan({ integration: 'rare' });
  t.same(first.items, [], 'none among the first keys');
  t.equal(first.examined, SCAN_BUDGET, 'no more keys examined than the budget');
  t.ok(first.next, 'and a cursor to look further');
  const second = await store.scan({ integration: 'rare', cursor: first.next });
  t.same(ids(second.items), ['zz-last|rare|']);
  t.equal(second.examined, 101);
  t.equal(second.next, undefined, 'the walk ends there');
});
