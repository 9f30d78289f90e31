import t from 'tap';
import pino from 'pino';
import { createClient } from '@keyv/redis';
import type { Settings } from '../../src/config/types.js';
import { KeyvConnectionStore } from '../../src/store/keyv-store.js';
import { openStore, requireSharedSecrets } from '../../src/store/open.js';
import { openRedis, redactUrl, type RedisTuning } from '../../src/store/redis.js';
import type { Connection, ConnectionStore } from '../../src/store/types.js';
import { SECRET_KEY } from '../support/servers.js';
import { cleanPrefix, REDIS_URL, RedisRelay, redisKeys, uniquePrefix } from '../support/redis.js';
import { pollUntil } from '../support/poll.js';

const log = pino({ level: 'silent' });
const env = { CREDPROXY_SECRET_KEY: SECRET_KEY, CREDPROXY_ADMIN_TOKEN: 'admin-token-for-redis-tests' };

function settings(store: string, store_prefix: string): Settings {
  return { store, store_prefix } as Settings;
}

function conn(entity: string, token: string, updated_at = Date.now()): Connection {
  return { entity, integration: 'demo', scheme: 'bearer', params: {}, status: 'active', credentials: { token }, created_at: 1, updated_at };
}

interface Teardown {
  teardown(fn: () => unknown): void;
}

async function open(t: Teardown, prefix: string, url = REDIS_URL, tuning: Partial<RedisTuning> = {}): Promise<ConnectionStore> {
  const { store } = await openStore(settings(url, prefix), env, log, tuning);
  t.teardown(() => store.close());
  return store;
}

t.test('connections written by one instance are read by another; every key under the prefix, secrets sealed', async (t) => {
  const prefix = uniquePrefix();
  t.teardown(() => cleanPrefix(prefix));
  const a = await open(t, prefix);
  const b = await open(t, prefix);
  await a.put(conn('alice@example.com', 'sk-live-abcdef'));
  const got = await b.get('alice@example.com', 'demo');
  t.equal(got?.credentials.token, 'sk-live-abcdef');
  await a.kv.set('state:xyz', 'v', 60_000);
  const keys = await redisKeys(prefix);
  t.same(keys, [`${prefix}:conn:alice@example.com:demo`, `${prefix}:kv:state:xyz`]);
  const raw = createClient({ url: REDIS_URL });
  await raw.connect();
  t.teardown(() => raw.destroy());
  const stored = await raw.get(`${prefix}:conn:alice@example.com:demo`);
  t.ok(stored);
  t.notMatch(stored!, /sk-live-abcdef/, 'the credential is encrypted at rest');
  t.ok((await raw.pTTL(`${prefix}:kv:state:xyz`)) > 0, 'kv records carry their ttl into Redis');
  t.equal(await b.get('bob', 'demo'), undefined, 'a missing connection is undefined, not an error');
  t.equal(await b.delete('alice@example.com', 'demo'), true);
  t.equal(await a.get('alice@example.com', 'demo', { fresh: true }), undefined);
});

t.test('kv take is single-use across instances', async (t) => {
  const prefix = uniquePrefix();
  t.teardown(() => cleanPrefix(prefix));
  const a = await open(t, prefix);
  const b = await open(t, prefix);
  for (let round = 0; round < 5; round++) {
    await a.kv.set(`link:${round}`, `payload-${round}`, 60_000);
    const takes = await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 ? a : b).kv.take(`link:${round}`)));
    t.same(takes.filter((v) => v !== undefined), [`payload-${round}`], `round ${round}: exactly one taker wins`);
  }
  t.equal(await a.kv.get('link:0'), undefined);
  await b.kv.set('k', 'v');
  t.equal(await a.kv.get('k'), 'v');
  t.equal(await a.kv.delete('k'), true);
  t.equal(await b.kv.delete('k'), false);
});

t.test('a write or delete on one instance reaches the other through pub/sub, not the cache ttl', async (t) => {
  const prefix = uniquePrefix();
  t.teardown(() => cleanPrefix(prefix));
  // An hour of cache ttl: only an invalidation message can make B re-read.
  const a = await open(t, prefix, REDIS_URL, { cacheTtlMs: 3_600_000 });
  const b = await open(t, prefix, REDIS_URL, { cacheTtlMs: 3_600_000 });
  await a.put(conn('alice', 'one', 1));
  t.equal((await b.get('alice', 'demo'))?.credentials.token, 'one', 'B caches version one');
  await a.put(conn('alice', 'two', 2));
  t.ok(await pollUntil(async () => (await b.get('alice', 'demo'))?.credentials.token === 'two'), 'B sees the update within 1 s');
  await a.delete('alice', 'demo');
  t.ok(await pollUntil(async () => (await b.get('alice', 'demo')) === undefined), 'B sees the delete within 1 s');
});

t.test('without invalidations, a shared cache falls back to its ttl; an unshared one keeps its copy', async (t) => {
  const prefix = uniquePrefix();
  t.teardown(() => cleanPrefix(prefix));
  const a = await open(t, prefix);
  const opened = await openRedis(REDIS_URL, prefix, log);
  t.teardown(() => opened.onClose?.());
  await opened.invalidation?.close();
  const key = Buffer.from(SECRET_KEY, 'base64');
  const withTtl = new KeyvConnectionStore(opened.keyv, key, { cacheTtlMs: 150 });
  const noTtl = new KeyvConnectionStore(opened.keyv, key);
  await a.put(conn('carol', 'one'));
  t.equal((await withTtl.get('carol', 'demo'))?.credentials.token, 'one');
  t.equal((await noTtl.get('carol', 'demo'))?.credentials.token, 'one');
  await a.put(conn('carol', 'two'));
  t.ok(await pollUntil(async () => (await withTtl.get('carol', 'demo'))?.credentials.token === 'two', 3_000), 'the ttl expires the stale copy');
  t.equal((await noTtl.get('carol', 'demo'))?.credentials.token, 'one', 'no ttl, no invalidation: the cached copy stays (the embedded store case)');
  t.equal((await noTtl.get('carol', 'demo', { fresh: true }))?.credentials.token, 'two', 'fresh reads go to the backend');
});

t.test('Redis unreachable: every operation fails loudly, then works again by itself', async (t) => {
  const prefix = uniquePrefix();
  t.teardown(() => cleanPrefix(prefix));
  const relay = await new RedisRelay().start();
  t.teardown(() => relay.close());
  const s = await open(t, prefix, relay.url, { opTimeoutMs: 500 });
  await s.put(conn('dave', 'tok'));
  t.equal((await s.get('dave', 'demo'))?.credentials.token, 'tok');

  await relay.cut();
  t.ok(
    await pollUntil(() => s.get('dave', 'demo').then(() => false, () => true)),
    'once the subscriber notices, a cached connection is not served: invalidations cannot arrive',
  );
  await t.rejects(s.get('erin', 'demo'), 'a read fails rather than answering "no connection"');
  await t.rejects(s.put(conn('dave', 'tok2')), 'a write fails rather than being a no-op');
  await t.rejects(s.delete('dave', 'demo'));
  await t.rejects(s.kv.take('anything'));
  await t.rejects(s.kv.set('x', 'y'));
  await t.rejects(s.locks.acquire('l', { waitMs: 100 }));
  await t.rejects(s.ping());

  await relay.restore();
  t.ok(await pollUntil(() => s.ping().then(() => true, () => false), 15_000), 'reconnects without a restart');
  t.equal((await s.get('dave', 'demo'))?.credentials.token, 'tok', 'the failed write changed nothing');

  relay.stall();
  await t.rejects(s.get('frank', 'demo'), /did not answer within 500 ms/, 'a Redis that stops answering times out');
  await relay.cut();
  await relay.restore();
  t.ok(await pollUntil(() => s.ping().then(() => true, () => false), 15_000));
});

t.test('Redis that does not answer at start is a clear start error, password not shown', async (t) => {
  const relay = await new RedisRelay().start();
  const port = relay.port;
  await relay.close();
  const err = await openStore(settings(`redis://:hunter2@127.0.0.1:${port}/2`, uniquePrefix()), env, log, { connectTimeoutMs: 300 }).then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  t.match(err?.message, `store redis://…@127.0.0.1:${port}/2: could not connect to Redis within 300 ms (`);
  t.match(err?.message, /ECONNREFUSED/, 'the cause is named');
  t.notMatch(err?.message, /hunter2/);
  t.equal(redactUrl('rediss://user:pw@h:6380/1'), 'rediss://…@h:6380/1');
});

t.test('the password and db of the URL are used', async (t) => {
  const prefix = uniquePrefix();
  t.teardown(async () => {
    const c = createClient({ url: `${REDIS_URL}/3` });
    await c.connect();
    for await (const keys of c.scanIterator({ MATCH: `${prefix}:*` })) if (keys.length) await c.del(keys);
    c.destroy();
  });
  const s = await open(t, prefix, `${REDIS_URL}/3`);
  await s.put(conn('gina', 'tok'));
  t.same(await redisKeys(prefix), [], 'nothing in db 0');
  const c = createClient({ url: `${REDIS_URL}/3` });
  await c.connect();
  t.teardown(() => c.destroy());
  t.equal(await c.exists(`${prefix}:conn:gina:demo`), 1, 'the key is in db 3');
  // A Redis without a password answers AUTH with an error: the password is really sent.
  await t.rejects(openStore(settings('redis://:not-the-password@127.0.0.1:6379', prefix), env, log, { connectTimeoutMs: 500 }), /could not connect to Redis.*ERR AUTH/);
});

t.test('a shared store needs the storage key and admin token given, not generated', async (t) => {
  const s = settings('redis://127.0.0.1:6379', 'x');
  t.throws(() => requireSharedSecrets(s, {}), /CREDPROXY_SECRET_KEY.*CREDPROXY_ADMIN_TOKEN/);
  t.throws(() => requireSharedSecrets(s, { CREDPROXY_ADMIN_TOKEN: 'a'.repeat(20) }), /CREDPROXY_SECRET_KEY/);
  t.throws(() => requireSharedSecrets(s, { CREDPROXY_SECRET_KEY: SECRET_KEY }), /CREDPROXY_ADMIN_TOKEN/);
  t.doesNotThrow(() => requireSharedSecrets({ ...s, admin_token: 'a'.repeat(20) }, { CREDPROXY_SECRET_KEY: SECRET_KEY }));
  await t.rejects(openStore(s, {}, log), /CREDPROXY_SECRET_KEY/);
});

t.test('rediss:// speaks TLS: it cannot talk to the plain-text port that redis:// reaches', async (t) => {
  const plain = await openRedis(REDIS_URL, uniquePrefix(), log, { connectTimeoutMs: 2_000 });
  await plain.onClose?.();
  await plain.invalidation?.close();
  await t.rejects(openRedis('rediss://127.0.0.1:6379', uniquePrefix(), log, { connectTimeoutMs: 500 }), /store rediss:\/\/127\.0\.0\.1:6379: could not connect to Redis within 500 ms/);
});
