import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from '@keyv/redis';
import Keyv from 'keyv';
import pino from 'pino';
import t from 'tap';
import type { Settings } from '../../src/config/types.js';
import { isCredproxyError } from '../../src/errors.js';
import { encrypt } from '../../src/store/crypto.js';
import { KeyvConnectionStore } from '../../src/store/keyv-store.js';
import { checkLabel, connectionId, LABEL } from '../../src/store/label.js';
import { openStore } from '../../src/store/open.js';
import { SqliteAdapter } from '../../src/store/sqlite.js';
import type { Connection, ConnectionStore } from '../../src/store/types.js';
import { pollUntil } from '../support/poll.js';
import { cleanPrefix, REDIS_URL, redisKeys, uniquePrefix } from '../support/redis.js';
import { SECRET_KEY } from '../support/servers.js';

const key = Buffer.alloc(32, 9);
const conn = (entity: string, token: string, label?: string, integration = 'svc'): Connection => ({
  entity,
  integration,
  ...(label === undefined ? {} : { label }),
  scheme: 'bearer',
  params: {},
  status: 'active',
  credentials: { token },
  created_at: 1,
  updated_at: 2,
});

t.test('label syntax: like an entity id, at most 64 characters', async (t) => {
  for (const ok of ['work', 'Personal', 'a', 'alice@example.com', 'team:eu-1', 'v1.2+b_c', 'x'.repeat(64)]) t.ok(LABEL.test(ok), ok);
  for (const bad of ['', ' work', 'work ', '-x', '.x', 'a/b', 'a b', 'a\nb', 'ü', 'x'.repeat(65)]) {
    t.notOk(LABEL.test(bad), JSON.stringify(bad));
    const err = (() => {
      try {
        checkLabel(bad, 'here');
      } catch (e) {
        return e;
      }
    })();
    t.ok(isCredproxyError(err) && err.code === 'bad_request' && /^here: a connection label is 1 to 64/.test(err.message), `${JSON.stringify(bad)} is a 400 saying the syntax`);
  }
  t.equal(connectionId('alice', 'svc'), 'alice\nsvc', 'the default connection keeps its pre-label id');
  t.equal(connectionId('alice', 'svc', 'work'), 'alice\nsvc\nwork');
});

t.test('sqlite: a connection stored before labels existed is read unchanged; labelled ones sit beside it', async (t) => {
  const path = join(mkdtempSync(join(tmpdir(), 'credproxy-labels-')), 'credproxy.db');
  const adapter = new SqliteAdapter(path);
  const keyv = new Keyv<string>({ store: adapter, namespace: 'test', throwOnErrors: true });
  t.teardown(() => adapter.disconnect());
  // Written exactly as the store wrote it before labels: this key, this AAD, this record.
  const sealed = encrypt(key, JSON.stringify({ token: 'from-before' }), 'credproxy:connection:alice\nsvc');
  await keyv.set('conn:alice:svc', JSON.stringify({ v: 1, scheme: 'bearer', params: {}, status: 'active', sealed, created_at: 1, updated_at: 2 }));
  const store = new KeyvConnectionStore(keyv, key);

  const old = await store.get('alice', 'svc');
  t.equal(old?.credentials.token, 'from-before', 'readable without a migration');
  t.equal(old?.label, undefined, 'and it is the default connection');

  await store.put(conn('alice', 'tok-work', 'work'));
  await store.put(conn('alice', 'tok-home', 'home'));
  await store.put(conn('alice', 'tok-other-work', 'work', 'other'));
  t.equal((await store.get('alice', 'svc', { label: 'work', fresh: true }))?.credentials.token, 'tok-work');
  t.equal((await store.get('alice', 'svc', { label: 'work', fresh: true }))?.label, 'work');
  t.equal((await store.get('alice', 'svc', { fresh: true }))?.credentials.token, 'from-before', 'the default is untouched');
  t.equal(await store.get('alice', 'svc', { label: 'nope' }), undefined);
  t.same(
    (await store.list('alice', ['svc', 'other', 'none'])).map((c) => [c.integration, c.label ?? null, c.credentials.token]),
    [
      ['svc', null, 'from-before'],
      ['svc', 'home', 'tok-home'],
      ['svc', 'work', 'tok-work'],
      ['other', 'work', 'tok-other-work'],
    ],
    'default first, then labels in order, per integration',
  );

  // The sealed credentials are bound to their label: a record copied under another label does not open.
  await keyv.set('conn:alice:svc/stolen', (await keyv.get('conn:alice:svc/work'))!);
  t.match(await store.get('alice', 'svc', { label: 'stolen' }), { credentials: {}, unreadable: { key_id: 'default' } }, 'the AAD names the label');

  t.ok(await store.delete('alice', 'svc', 'work'));
  t.equal(await store.get('alice', 'svc', { label: 'work' }), undefined);
  t.equal((await store.get('alice', 'svc'))?.credentials.token, 'from-before', 'deleting a label leaves the default');
  t.ok(await store.delete('alice', 'svc'));
  t.same((await store.list('alice', ['svc'])).map((c) => c.label), ['home'], 'deleting the default leaves the labels');
  t.notOk(await store.delete('alice', 'svc', 'work'), 'deleting twice reports nothing removed');
});

t.test('labels added at once are all listed: the index is updated under the store lock', async (t) => {
  const store = new KeyvConnectionStore(new Keyv<string>({ namespace: 'mem' }), key);
  const labels = Array.from({ length: 30 }, (_, i) => `acct-${String(i).padStart(2, '0')}`);
  await Promise.all(labels.map((l) => store.put(conn('bob', `tok-${l}`, l))));
  t.same((await store.list('bob', ['svc'])).map((c) => c.label), labels);
  await Promise.all(labels.filter((_, i) => i % 2).map((l) => store.delete('bob', 'svc', l)));
  t.same((await store.list('bob', ['svc'])).map((c) => c.label), labels.filter((_, i) => i % 2 === 0));
});

t.test('a put and a delete of one label racing: a stored connection is always listed', async (t) => {
  const store = new KeyvConnectionStore(new Keyv<string>({ namespace: 'race' }), key);
  for (let round = 0; round < 20; round++) {
    const label = `r${round}`;
    await store.put(conn('dana', 'old', label));
    // Either order may win; whatever is stored in the end must be in the index.
    await Promise.all(round % 2 ? [store.delete('dana', 'svc', label), store.put(conn('dana', 'new', label))] : [store.put(conn('dana', 'new', label)), store.delete('dana', 'svc', label)]);
    const stored = await store.get('dana', 'svc', { label, fresh: true });
    const listed = (await store.list('dana', ['svc'])).some((c) => c.label === label);
    t.equal(listed, stored !== undefined, `round ${round}: ${stored ? 'stored and listed' : 'gone and not listed'}`);
  }
});

const log = pino({ level: 'silent' });
const env = { CREDPROXY_SECRET_KEY: SECRET_KEY, CREDPROXY_ADMIN_TOKEN: 'admin-token-for-redis-tests' };

async function openRedisStore(t: { teardown(fn: () => unknown): void }, prefix: string): Promise<ConnectionStore> {
  const { store } = await openStore({ store: REDIS_URL, store_prefix: prefix } as Settings, env, log, { cacheTtlMs: 3_600_000 });
  t.teardown(() => store.close());
  return store;
}

t.test('Redis: labelled keys under the prefix, listed and invalidated across instances', async (t) => {
  const prefix = uniquePrefix();
  t.teardown(() => cleanPrefix(prefix));
  // An hour of cache ttl: only an invalidation message can make B re-read.
  const a = await openRedisStore(t, prefix);
  const b = await openRedisStore(t, prefix);
  await a.put(conn('alice@example.com', 'tok-default'));
  await a.put(conn('alice@example.com', 'tok-work-1', 'work'));
  t.same((await redisKeys(prefix)).sort(), [`${prefix}:conn:alice@example.com:svc`, `${prefix}:conn:alice@example.com:svc/work`, `${prefix}:labels:alice@example.com:svc`]);
  const raw = createClient({ url: REDIS_URL });
  await raw.connect();
  t.teardown(() => raw.destroy());
  t.notMatch((await raw.get(`${prefix}:conn:alice@example.com:svc/work`))!, /tok-work/, 'sealed at rest');

  t.equal((await b.get('alice@example.com', 'svc', { label: 'work' }))?.credentials.token, 'tok-work-1', 'B caches the labelled connection');
  t.same((await b.list('alice@example.com', ['svc'])).map((c) => c.label ?? null), [null, 'work'], 'another instance lists it');
  await a.put(conn('alice@example.com', 'tok-work-2', 'work'));
  t.ok(await pollUntil(async () => (await b.get('alice@example.com', 'svc', { label: 'work' }))?.credentials.token === 'tok-work-2'), 'B drops its copy of the labelled key');
  t.equal((await b.get('alice@example.com', 'svc'))?.credentials.token, 'tok-default');
  await a.delete('alice@example.com', 'svc', 'work');
  t.ok(await pollUntil(async () => (await b.get('alice@example.com', 'svc', { label: 'work' })) === undefined), 'B sees the delete');
  t.same((await b.list('alice@example.com', ['svc'])).map((c) => c.label ?? null), [null]);
  t.same(await redisKeys(prefix), [`${prefix}:conn:alice@example.com:svc`], 'the emptied index is removed');

  // Two instances adding labels at once: the index lock is Redis's, so neither add is lost.
  await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).put(conn('carol', `t${i}`, `l${i}`))));
  t.same((await a.list('carol', ['svc'])).map((c) => c.label), Array.from({ length: 10 }, (_, i) => `l${i}`));
});
