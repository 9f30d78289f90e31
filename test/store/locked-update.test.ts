import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import type { Settings } from '../../src/config/types.js';
import { lockedUpdate, WriteBack, type LockedUpdateWork } from '../../src/store/locked-update.js';
import { openStore } from '../../src/store/open.js';
import type { Connection, ConnectionStore } from '../../src/store/types.js';
import { LogCapture, SECRET_KEY } from '../support/servers.js';
import { cleanPrefix, REDIS_URL, RedisRelay, uniquePrefix } from '../support/redis.js';
import { pollUntil } from '../support/poll.js';
import { logLine } from '../support/log-wait.js';

const env = { CREDPROXY_SECRET_KEY: SECRET_KEY, CREDPROXY_ADMIN_TOKEN: 'admin-token-for-update-tests' };
type Teardown = { teardown(fn: () => unknown): void };

/** Each opened store's write-back queue, as a runtime owns one (rt.writeBack). */
const writeBacks = new Map<ConnectionStore, WriteBack>();

async function open(t: Teardown, store: string, prefix: string, logs = new LogCapture()): Promise<ConnectionStore> {
  const log = pino({ level: 'debug' }, logs);
  const opened = await openStore({ store, store_prefix: prefix } as Settings, env, log, { opTimeoutMs: 1_000 });
  const writeBack = new WriteBack(opened.store, log);
  writeBacks.set(opened.store, writeBack);
  t.teardown(() => {
    writeBack.close();
    return opened.store.close();
  });
  return opened.store;
}

/** lockedUpdate with the store's own write-back queue. */
function update(store: ConnectionStore, entity: string, integration: string, work: LockedUpdateWork, opts: Omit<Parameters<typeof lockedUpdate>[4], 'writeBack'> = {}) {
  return lockedUpdate(store, entity, integration, work, { ...opts, writeBack: writeBacks.get(store)! });
}

function expiring(entity: string): Connection {
  return {
    entity,
    integration: 'demo',
    scheme: 'oauth2',
    params: {},
    status: 'active',
    credentials: { access_token: 'at-old', refresh_token: 'rt-old' },
    expires_at: Date.now() - 1_000,
    created_at: 1,
    updated_at: 1,
  };
}

/** A fake token endpoint call: slow, rotating, counting. */
function refresher(delayMs = 150, during?: () => Promise<void>) {
  const state = { calls: 0 };
  const work: LockedUpdateWork = {
    needed: (c) => (c.expires_at ?? 0) < Date.now() + 60_000,
    update: async (c) => {
      state.calls++;
      if (c.credentials.refresh_token !== 'rt-old') throw new Error('invalid_grant: refresh token reused');
      await during?.();
      // Deliberately slow, as a real token endpoint is: concurrent callers must pile up behind it.
      await sleep(delayMs);
      return { ...c, credentials: { access_token: 'at-new', refresh_token: 'rt-new' }, expires_at: Date.now() + 3_600_000, updated_at: Date.now() };
    },
  };
  return { work, state };
}

t.test('Redis: 40 concurrent updates over two instances do the work once; every caller gets the result', async (t) => {
  const prefix = uniquePrefix();
  t.teardown(() => cleanPrefix(prefix));
  const a = await open(t, REDIS_URL, prefix);
  const b = await open(t, REDIS_URL, prefix);
  await a.put(expiring('alice'));
  const { work, state } = refresher();
  const results = await Promise.all(Array.from({ length: 40 }, (_, i) => update(i % 2 ? a : b, 'alice', 'demo', work)));
  t.equal(state.calls, 1, 'one token endpoint call in total');
  t.equal(results.filter((r) => r.updated).length, 1);
  t.ok(results.every((r) => r.connection?.credentials.access_token === 'at-new' && r.persisted));
  t.equal((await b.get('alice', 'demo'))?.credentials.refresh_token, 'rt-new');
});

t.test('memory store: the same pattern in one process', async (t) => {
  const s = await open(t, 'memory', 'x');
  await s.put(expiring('bob'));
  const { work, state } = refresher(20);
  const results = await Promise.all(Array.from({ length: 20 }, () => update(s, 'bob', 'demo', work)));
  t.equal(state.calls, 1);
  t.ok(results.every((r) => r.connection?.credentials.access_token === 'at-new'));
  t.same(await update(s, 'nobody', 'demo', work), { connection: undefined, updated: false, persisted: true }, 'no connection, no work');
});

t.test('Redis lost after the token endpoint answered: the rotated token is kept and written back', async (t) => {
  const prefix = uniquePrefix();
  t.teardown(() => cleanPrefix(prefix));
  const relay = await new RedisRelay().start();
  t.teardown(() => relay.close());
  const logs = new LogCapture();
  const viaRelay = await open(t, relay.url, prefix, logs);
  const direct = await open(t, REDIS_URL, prefix);
  await direct.put(expiring('carol'));
  const { work, state } = refresher(50, () => relay.cut());
  const log = pino({ level: 'debug' }, logs);
  const r = await update(viaRelay, 'carol', 'demo', work, { log });
  t.equal(r.updated, true);
  t.equal(r.persisted, false, 'reported as not yet stored');
  t.equal(r.connection?.credentials.access_token, 'at-new', 'the caller can use the new token at once');
  t.match(logs.text, /kept in memory and retried/, 'the result waits in memory');
  t.equal((await direct.get('carol', 'demo', { fresh: true }))?.credentials.refresh_token, 'rt-old', 'not in Redis yet');
  await t.rejects(update(viaRelay, 'carol', 'demo', work), { code: 'store_unavailable' }, 'no new work while the store is down');
  await relay.restore();
  t.ok(await pollUntil(async () => (await direct.get('carol', 'demo', { fresh: true }))?.credentials.refresh_token === 'rt-new', 15_000), 'written once Redis is back');
  t.ok(await logLine(logs, /pending connection update written/, 5_000), 'and no longer pending');
  const again = await update(direct, 'carol', 'demo', work, { waitMs: 5_000 });
  t.equal(again.updated, false);
  t.equal(again.connection?.credentials.refresh_token, 'rt-new', 'another instance finds the written-back result…');
  t.equal(state.calls, 1, '…and the rotated refresh token was never spent twice');
  t.notMatch(logs.text, /at-new|rt-new|rt-old/, 'no secret in the logs');
  t.match(logs.text, /kept in memory and retried/);
});

t.test('a pending result is written before new work, and dropped if the connection changed meanwhile', async (t) => {
  const prefix = uniquePrefix();
  t.teardown(() => cleanPrefix(prefix));
  const relay = await new RedisRelay().start();
  t.teardown(() => relay.close());
  const logs = new LogCapture();
  const log = pino({ level: 'debug' }, logs);
  const viaRelay = await open(t, relay.url, prefix, logs);
  const direct = await open(t, REDIS_URL, prefix);

  await direct.put(expiring('dave'));
  const first = refresher(20, () => relay.cut());
  t.equal((await update(viaRelay, 'dave', 'demo', first.work, { log })).persisted, false);
  await relay.restore();
  const second = refresher(20);
  const r = await pollUntil(async () => {
    const res = await update(viaRelay, 'dave', 'demo', second.work).catch(() => undefined);
    return res?.connection?.credentials.refresh_token === 'rt-new';
  }, 15_000);
  t.ok(r, 'the next update finds the written-back result');
  t.equal(second.state.calls, 0, 'and does no work of its own');

  await direct.put(expiring('erin'));
  const third = refresher(20, () => relay.cut());
  t.equal((await update(viaRelay, 'erin', 'demo', third.work, { log })).persisted, false);
  // Meanwhile the user connects again through an instance that still reaches Redis.
  await direct.put({ ...expiring('erin'), credentials: { access_token: 'at-user', refresh_token: 'rt-user' }, updated_at: 2 });
  await relay.restore();
  t.ok(await logLine(logs, /the update is dropped/, 15_000), 'the pending update is dropped, not written');
  t.equal((await direct.get('erin', 'demo', { fresh: true }))?.credentials.refresh_token, 'rt-user', 'the newer connection wins');
});

t.test('a holder whose lock expired during the work does not overwrite a newer write', async (t) => {
  const prefix = uniquePrefix();
  t.teardown(() => cleanPrefix(prefix));
  const a = await open(t, REDIS_URL, prefix);
  const b = await open(t, REDIS_URL, prefix);
  await a.put(expiring('frank'));
  const slow = refresher(400, async () => {
    // Outlive the 100 ms lock, and let someone else write in the meantime.
    await sleep(150);
    await b.put({ ...expiring('frank'), credentials: { access_token: 'at-b', refresh_token: 'rt-b' }, expires_at: Date.now() + 3_600_000, updated_at: 5 });
  });
  const r = await update(a, 'frank', 'demo', slow.work, { ttlMs: 100 });
  t.equal(r.updated, false);
  t.equal(r.connection?.credentials.refresh_token, 'rt-b');
  t.equal((await b.get('frank', 'demo', { fresh: true }))?.credentials.refresh_token, 'rt-b');
});

t.test('the work failing releases the lock and reaches the caller', async (t) => {
  const s = await open(t, 'memory', 'x');
  await s.put({ ...expiring('gina'), credentials: { refresh_token: 'revoked' } });
  const { work } = refresher(1);
  await t.rejects(update(s, 'gina', 'demo', work, { waitMs: 0 }), /invalid_grant/);
  await t.rejects(update(s, 'gina', 'demo', work, { waitMs: 0 }), /invalid_grant/, 'not a LockTimeoutError: the lock was released');
});
