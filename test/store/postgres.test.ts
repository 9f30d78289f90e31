import t from 'tap';
import pg from 'pg';
import pino from 'pino';
import type { Settings } from '../../src/config/types.js';
import { WriteBack } from '../../src/store/locked-update.js';
import { LockLostError } from '../../src/store/keyv-store.js';
import { openStore } from '../../src/store/open.js';
import { openPostgres, type StoreTuning } from '../../src/store/postgres.js';
import { migrate, MIGRATIONS } from '../../src/store/postgres-migrations.js';
import type { Connection, ConnectionStore } from '../../src/store/types.js';
import { SECRET_KEY } from '../support/servers.js';
import { uniquePrefix } from '../support/redis.js';
import { freshDatabase, pgUrl, PostgresRelay, query } from '../support/postgres.js';
import { pollUntil } from '../support/poll.js';

const log = pino({ level: 'silent' });
const env = { CREDPROXY_SECRET_KEY: SECRET_KEY, CREDPROXY_ADMIN_TOKEN: 'admin-token-for-postgres-tests' };

function settings(store: string, store_prefix: string): Settings {
  return { store, store_prefix } as Settings;
}

function conn(entity: string, token: string, updated_at = Date.now()): Connection {
  return { entity, integration: 'demo', scheme: 'bearer', params: {}, status: 'active', credentials: { token }, created_at: 1, updated_at };
}

interface Teardown {
  teardown(fn: () => unknown): void;
}

// One database for the file, every test under its own store_prefix.
const db = await freshDatabase(t);
const URL = pgUrl(db);

async function open(t: Teardown, prefix: string, url = URL, tuning: Partial<StoreTuning> = {}): Promise<ConnectionStore> {
  const { store } = await openStore(settings(url, prefix), env, log, tuning);
  t.teardown(() => store.close());
  return store;
}

t.test('instances starting at once apply each schema migration exactly once', async (t) => {
  const fresh = await freshDatabase(t);
  const opened = await Promise.all(Array.from({ length: 5 }, () => openPostgres(pgUrl(fresh), uniquePrefix(), log)));
  for (const o of opened) t.teardown(async () => {
    await o.invalidation?.close();
    await o.onClose?.();
  });
  const applied = opened.flatMap((o) => o.migrated).sort();
  t.same(applied, MIGRATIONS.map((m) => m.version), 'every version applied by exactly one of the five');
  const rows = await query<{ version: number }>(fresh, 'SELECT version FROM credproxy_migrations ORDER BY version');
  t.same(rows.map((r) => r.version), MIGRATIONS.map((m) => m.version));

  // A later release adds a step: only that one runs, once.
  const pool = new pg.Pool({ connectionString: pgUrl(fresh) });
  t.teardown(() => pool.end());
  const next = [...MIGRATIONS, { version: 99, name: 'test step', sql: 'CREATE TABLE credproxy_test_step (x int)' }];
  const twice = await Promise.all([migrate(pool, next), migrate(pool, next), migrate(pool, next)]);
  t.same(twice.flat(), [99]);
  // A database migrated by a newer credproxy is refused rather than misread.
  await t.rejects(openPostgres(pgUrl(fresh), uniquePrefix(), log), /schema is at version 99, newer than this credproxy knows/);
  // A failed step leaves nothing behind and names itself.
  const broken = [...next, { version: 100, name: 'broken', sql: 'CREATE TABLE credproxy_half (x int); SELECT no_such_function()' }];
  await t.rejects(migrate(pool, broken), /schema migration 100 \(broken\) failed/);
  t.same(await query(fresh, "SELECT 1 FROM pg_tables WHERE tablename = 'credproxy_half'"), [], 'rolled back');
});

t.test('connections written by one instance are read by another; secrets sealed in the table', async (t) => {
  const prefix = uniquePrefix();
  const a = await open(t, prefix);
  const b = await open(t, prefix);
  await a.put(conn('alice@example.com', 'sk-live-abcdef'));
  t.equal((await b.get('alice@example.com', 'demo'))?.credentials.token, 'sk-live-abcdef');
  await a.kv.set('state:xyz', 'v', 60_000);
  const rows = await query<{ key: string; value: string; expires_at: Date | null }>(db, 'SELECT key, value, expires_at FROM credproxy_kv WHERE key LIKE $1 ORDER BY key', [`${prefix}:%`]);
  t.same(rows.map((r) => r.key), [`${prefix}:conn:alice@example.com:demo`, `${prefix}:kv:state:xyz`]);
  t.notMatch(rows[0]!.value, /sk-live-abcdef/, 'the credential is encrypted at rest');
  t.ok(rows[1]!.expires_at && rows[1]!.expires_at.getTime() > Date.now(), 'kv records carry their expiry into the table');
  t.equal(await b.get('bob', 'demo'), undefined, 'a missing connection is undefined, not an error');
  t.equal(await b.delete('alice@example.com', 'demo'), true);
  t.equal(await a.get('alice@example.com', 'demo', { fresh: true }), undefined);

  await a.kv.set('short', 'v', 50);
  t.ok(await pollUntil(async () => (await b.kv.get('short')) === undefined), 'expired on the database clock');
  t.equal(await b.kv.delete('short'), false, 'an expired record is not reported as deleted');
});

t.test('kv take is single-use across instances', async (t) => {
  const prefix = uniquePrefix();
  const a = await open(t, prefix);
  const b = await open(t, prefix);
  for (let round = 0; round < 3; round++) {
    await a.kv.set(`link:${round}`, `payload-${round}`, 60_000);
    const takes = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 ? a : b).kv.take(`link:${round}`)));
    t.same(takes.filter((v) => v !== undefined), [`payload-${round}`], `round ${round}: exactly one taker wins`);
  }
});

t.test('a write or delete on one instance reaches the other over LISTEN/NOTIFY, not the cache ttl', async (t) => {
  const prefix = uniquePrefix();
  const a = await open(t, prefix, URL, { cacheTtlMs: 3_600_000 });
  const b = await open(t, prefix, URL, { cacheTtlMs: 3_600_000 });
  const other = await open(t, uniquePrefix(), URL, { cacheTtlMs: 3_600_000 });
  t.ok(await pollUntil(() => (b as unknown as { opts: { invalidation: { live: boolean } } }).opts.invalidation.live), 'B listens');
  await a.put(conn('alice', 'one', 1));
  t.equal((await b.get('alice', 'demo'))?.credentials.token, 'one', 'B caches version one');
  await a.put(conn('alice', 'two', 2));
  t.ok(await pollUntil(async () => (await b.get('alice', 'demo'))?.credentials.token === 'two'), 'B sees the update within 1 s');
  await a.delete('alice', 'demo');
  t.ok(await pollUntil(async () => (await b.get('alice', 'demo')) === undefined), 'B sees the delete within 1 s');
  t.equal(await other.get('alice', 'demo'), undefined, 'another prefix is another store');
});

t.test('locks exclude across instances; a lock lost to expiry cannot write (fencing)', async (t) => {
  const prefix = uniquePrefix();
  const a = await open(t, prefix);
  const b = await open(t, prefix);
  const held = await a.locks.acquire('conn:x', { ttlMs: 300 });
  t.ok(held.fence, 'a PostgreSQL lock carries a fencing number');
  await t.rejects(b.locks.acquire('conn:x', { ttlMs: 300, waitMs: 100 }), /still held/);
  // A's lock expires (a stalled process); B takes it.
  const taken = await b.locks.acquire('conn:x', { ttlMs: 5_000, waitMs: 2_000 });
  t.ok(Number(taken.fence) > Number(held.fence), 'fencing numbers grow');
  t.equal(await held.held(), false);
  await t.rejects(a.put(conn('x', 'from-a'), { lock: held }), LockLostError, 'the stale holder cannot write');
  t.equal(await b.get('x', 'demo', { fresh: true }), undefined, 'nothing written');
  await b.put(conn('x', 'from-b'), { lock: taken });
  t.equal((await a.get('x', 'demo', { fresh: true }))?.credentials.token, 'from-b', 'the holder writes; keyv reads its record back');
  t.equal(await held.release(), false, 'the stale holder does not release the new lock');
  t.equal(await taken.held(), true);
  t.equal(await taken.release(), true);
  const again = await a.locks.acquire('conn:x', { ttlMs: 1_000, waitMs: 100 });
  t.ok(again, 'free again once released');
  await again.release();
});

t.test('rate-cap buckets are shared by the instances', async (t) => {
  const prefix = uniquePrefix();
  const a = await open(t, prefix);
  const b = await open(t, prefix);
  const takes = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 ? a : b).rateLimit.take('client:k', 5)));
  t.equal(takes.filter((d) => d.allowed).length, 5, 'five per minute across both');
  const refused = takes.find((d) => !d.allowed);
  t.ok(refused && refused.retryAfterMs > 0 && refused.retryAfterMs <= 12_000, `retry after ${refused?.retryAfterMs} ms`);
  t.equal((await a.rateLimit.take('client:other', 5)).allowed, true, 'buckets are per key');
});

t.test('PostgreSQL unreachable: every operation fails loudly, then works again by itself', async (t) => {
  const prefix = uniquePrefix();
  const relay = await new PostgresRelay().start();
  t.teardown(() => relay.close());
  const s = await open(t, prefix, relay.url(db), { opTimeoutMs: 500, connectTimeoutMs: 500 });
  await s.put(conn('dave', 'tok'));
  t.equal((await s.get('dave', 'demo'))?.credentials.token, 'tok');

  await relay.cut();
  t.ok(await pollUntil(() => s.get('dave', 'demo').then(() => false, () => true)), 'once the listener is lost, a cached connection is not served');
  await t.rejects(s.get('erin', 'demo'), 'a read fails rather than answering "no connection"');
  await t.rejects(s.put(conn('dave', 'tok2')), 'a write fails rather than being a no-op');
  await t.rejects(s.delete('dave', 'demo'));
  await t.rejects(s.kv.take('anything'));
  await t.rejects(s.locks.acquire('l', { waitMs: 100 }));
  await t.rejects(s.rateLimit.take('k', 5));
  await t.rejects(s.ping());

  await relay.restore();
  t.ok(await pollUntil(() => s.ping().then(() => true, () => false), 15_000), 'reconnects without a restart');
  t.equal((await s.get('dave', 'demo'))?.credentials.token, 'tok', 'the failed write changed nothing');
  t.ok(await pollUntil(() => (s as unknown as { opts: { invalidation: { live: boolean } } }).opts.invalidation.live, 5_000), 'listening again');

  relay.stall();
  await t.rejects(s.get('frank', 'demo'), /did not answer within 500 ms|timeout/, 'a database that stops answering times out');
  await relay.cut();
  await relay.restore();
  t.ok(await pollUntil(() => s.ping().then(() => true, () => false), 15_000));
});

t.test('a database that does not answer at start is a clear start error, password not shown', async (t) => {
  const relay = await new PostgresRelay().start();
  const port = relay.port;
  await relay.close();
  const err = await openStore(settings(`postgresql://u:hunter2@127.0.0.1:${port}/x`, uniquePrefix()), env, log, { connectTimeoutMs: 300 }).then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  t.match(err?.message, `store postgresql://…@127.0.0.1:${port}/x: could not connect to PostgreSQL within 300 ms (`);
  t.notMatch(err?.message, /hunter2/);
  await t.rejects(openStore(settings(URL, 'x'), {}, log), /CREDPROXY_SECRET_KEY/, 'a shared store needs the key given');
});

t.test('lockedUpdate: a holder whose lock expired mid-work does not write over the new holder (fenced)', async (t) => {
  const { lockedUpdate } = await import('../../src/store/locked-update.js');
  const prefix = uniquePrefix();
  const a = await open(t, prefix);
  const b = await open(t, prefix);
  await a.put(conn('fenced', 'v0', 1));
  let releaseB!: () => void;
  const bMayWrite = new Promise<void>((r) => (releaseB = r));
  let bStarted!: () => void;
  const bHasLock = new Promise<void>((r) => (bStarted = r));
  const work = (token: string, wait: () => Promise<void>) => ({
    needed: () => true,
    update: async (cur: Connection) => {
      await wait();
      return { ...cur, credentials: { token }, updated_at: cur.updated_at + 1 };
    },
  });
  // A's lock lives 200 ms; its work takes until B holds the lock (a stalled process).
  // B starts only once A holds the lock: started together, B could take it first and A would
  // wait for a lock B keeps until A is done (the test would then time out, not test fencing).
  let aStarted!: () => void;
  const aHasLock = new Promise<void>((r) => (aStarted = r));
  const ra = lockedUpdate(a, 'fenced', 'demo', work('from-a', async () => {
    aStarted();
    await bHasLock;
  }), { ttlMs: 200, writeBack: new WriteBack(a, log) });
  await aHasLock;
  const rb = lockedUpdate(b, 'fenced', 'demo', work('from-b', async () => {
    bStarted();
    await bMayWrite;
  }), { ttlMs: 10_000, waitMs: 5_000, writeBack: new WriteBack(b, log) });
  const resA = await ra;
  t.equal(resA.persisted, false, "A's result was refused: its lock is B's now");
  t.equal((await b.get('fenced', 'demo', { fresh: true }))?.credentials.token, 'v0', 'nothing written by A');
  releaseB();
  const resB = await rb;
  t.equal(resB.persisted, true);
  t.equal((await a.get('fenced', 'demo', { fresh: true }))?.credentials.token, 'from-b', "the lock holder's result is stored");
});

t.test('an instance waiting for another one migrating is not failed by the per-query timeout', async (t) => {
  const fresh = await freshDatabase(t);
  const holder = new pg.Client({ connectionString: pgUrl(fresh) });
  await holder.connect();
  t.teardown(() => holder.end());
  // The lock migrating instances take ("cred"), held here as a long migration would.
  await holder.query('SELECT pg_advisory_lock($1)', [0x63726564]);
  const opening = openPostgres(pgUrl(fresh), uniquePrefix(), log, { opTimeoutMs: 200 });
  // Deliberately hold the lock past several 200 ms query timeouts: the test is that none fires.
  await new Promise((r) => setTimeout(r, 700));
  await holder.query('SELECT pg_advisory_unlock($1)', [0x63726564]);
  const o = await opening;
  t.teardown(async () => {
    await o.invalidation?.close();
    await o.onClose?.();
  });
  t.same(o.migrated, MIGRATIONS.map((m) => m.version), 'it waited, then migrated');
});
