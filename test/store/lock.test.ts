import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import type { Settings } from '../../src/config/types.js';
import { LocalLockBackend, Locks, LockTimeoutError } from '../../src/store/lock.js';
import { openStore } from '../../src/store/open.js';
import type { ConnectionStore } from '../../src/store/types.js';
import { SECRET_KEY } from '../support/servers.js';
import { createClient } from '@keyv/redis';
import { cleanPrefix, REDIS_URL, RedisRelay, uniquePrefix } from '../support/redis.js';

const log = pino({ level: 'silent' });
const env = { CREDPROXY_SECRET_KEY: SECRET_KEY, CREDPROXY_ADMIN_TOKEN: 'admin-token-for-lock-tests' };

async function redisStores(t: { teardown(fn: () => unknown): void }, n: number): Promise<ConnectionStore[]> {
  const prefix = uniquePrefix();
  t.teardown(() => cleanPrefix(prefix));
  const stores: ConnectionStore[] = [];
  for (let i = 0; i < n; i++) {
    const { store } = await openStore({ store: REDIS_URL, store_prefix: prefix } as Settings, env, log);
    t.teardown(() => store.close());
    stores.push(store);
  }
  return stores;
}

/** 50 holders racing for one lock over the given lock sets; counts how many were ever inside at once. */
async function race(lockSets: Locks[], name: string) {
  let inside = 0;
  let maxInside = 0;
  let overlaps = 0;
  let ran = 0;
  await Promise.all(
    Array.from({ length: 50 }, (_, i) =>
      lockSets[i % lockSets.length]!.withLock(
        name,
        async () => {
          inside++;
          if (inside > 1) overlaps++;
          maxInside = Math.max(maxInside, inside);
          // Deliberately hold the lock for a random while, so holders would overlap without it.
          await sleep(Math.random() * 4);
          ran++;
          inside--;
        },
        { ttlMs: 10_000, waitMs: 60_000 },
      ),
    ),
  );
  return { maxInside, overlaps, ran };
}

t.test('in-process locks: 50 holders, one at a time', async (t) => {
  const locks = new Locks(new LocalLockBackend());
  t.same(await race([locks], 'refresh:alice:demo'), { maxInside: 1, overlaps: 0, ran: 50 });
});

t.test('Redis locks: 50 holders across two store instances, one at a time', async (t) => {
  const [a, b] = await redisStores(t, 2);
  t.same(await race([a!.locks, b!.locks], 'refresh:alice:demo'), { maxInside: 1, overlaps: 0, ran: 50 });
});

t.test('without the lock the same race overlaps (the check above can fail)', async (t) => {
  let inside = 0;
  let overlaps = 0;
  await Promise.all(
    Array.from({ length: 50 }, async () => {
      inside++;
      if (inside > 1) overlaps++;
      // The same random hold as above, to show the overlap the lock prevents.
      await sleep(Math.random() * 4);
      inside--;
    }),
  );
  t.ok(overlaps > 0);
});

for (const kind of ['local', 'redis'] as const) {
  t.test(`${kind}: a dead holder delays the others by at most the ttl; its late release frees nothing`, async (t) => {
    const [a, b] = kind === 'redis' ? (await redisStores(t, 2)).map((s) => s.locks) : [new Locks(new LocalLockBackend())];
    const other = b ?? a!;
    const dead = await a!.acquire('refresh:bob:demo', { ttlMs: 300 });
    // The holder "dies": it never releases. Another must wait, then gets it once the ttl is over.
    await t.rejects(other.acquire('refresh:bob:demo', { ttlMs: 5_000, waitMs: 50 }), LockTimeoutError);
    const next = await other.acquire('refresh:bob:demo', { ttlMs: 5_000, waitMs: 10_000 });
    t.equal(await dead.held(), false, 'the dead holder no longer owns it');
    t.equal(await dead.release(), false, 'a late release reports the lock was lost');
    t.equal(await next.held(), true, 'and does not free the new holder’s lock');
    t.equal(await next.release(), true);
    t.equal(await next.held(), false);
    const again = await other.acquire('refresh:bob:demo', { waitMs: 0 });
    await again.release();
  });

  t.test(`${kind}: withLock releases when the critical section throws, and waiters get in at once`, async (t) => {
    const [a, b] = kind === 'redis' ? (await redisStores(t, 2)).map((s) => s.locks) : [new Locks(new LocalLockBackend())];
    await t.rejects(a!.withLock('x', async () => Promise.reject(new Error('token endpoint down'))), /token endpoint down/);
    const got = await (b ?? a!).withLock('x', async (lock) => lock.held(), { waitMs: 0 });
    t.equal(got, true);
  });
}

t.test('LockTimeoutError names the lock', async (t) => {
  const locks = new Locks(new LocalLockBackend());
  const held = await locks.acquire('refresh:carol:demo');
  const err = await locks.acquire('refresh:carol:demo', { waitMs: 30 }).catch((e: unknown) => e);
  t.type(err, LockTimeoutError);
  t.match((err as Error).message, 'lock "refresh:carol:demo" still held by another holder after 30 ms');
  await held.release();
});

t.test('a release that fails while Redis is away is retried, so others need not wait out the ttl', async (t) => {
  const prefix = uniquePrefix();
  t.teardown(() => cleanPrefix(prefix));
  const relay = await new RedisRelay().start();
  t.teardown(() => relay.close());
  const { store: viaRelay } = await openStore({ store: relay.url, store_prefix: prefix } as Settings, env, log);
  t.teardown(() => viaRelay.close());
  const { store: other } = await openStore({ store: REDIS_URL, store_prefix: prefix } as Settings, env, log);
  t.teardown(() => other.close());
  // The holder finishes while Redis is unreachable: its release cannot get through.
  await viaRelay.locks.withLock('refresh:erin:demo', () => relay.cut(), { ttlMs: 30_000 });
  t.equal(await redisExists(`${prefix}:lock:refresh:erin:demo`), 1, 'the lock is still in Redis');
  await relay.restore();
  const lock = await other.locks.acquire('refresh:erin:demo', { waitMs: 10_000 });
  t.ok(await lock.held(), 'taken long before the 30 s ttl');
  await lock.release();
});

async function redisExists(key: string): Promise<number> {
  const c = createClient({ url: REDIS_URL });
  await c.connect();
  try {
    return await c.exists(key);
  } finally {
    c.destroy();
  }
}
