import { createClient } from '@keyv/redis';
import t, { type Test } from 'tap';
import { RedisLockBackend, type RedisCommander } from '../../src/store/redis-lock.js';
import { cleanPrefix, REDIS_URL, uniquePrefix } from '../support/redis.js';

// Many holders racing through Locks over this backend are in test/store/lock.test.ts; this is
// the backend's own contract against the machine's Redis.
async function backend(t: Test) {
  const prefix = uniquePrefix();
  const client = createClient({ url: REDIS_URL });
  await client.connect();
  t.teardown(async () => {
    client.destroy();
    await cleanPrefix(prefix);
  });
  const redis = client as unknown as RedisCommander;
  return { prefix, redis, a: new RedisLockBackend(redis, prefix), b: new RedisLockBackend(redis, prefix) };
}

t.test('one holder at a time under <prefix>:lock:<name>; release frees it', async (t) => {
  const { prefix, redis, a, b } = await backend(t);
  const h = await a.tryAcquire('refresh:alice:demo', 10_000);
  t.ok(h);
  t.equal(await redis.sendCommand(['GET', `${prefix}:lock:refresh:alice:demo`]), h!.token, 'the random token is the value');
  const ttl = Number(await redis.sendCommand(['PTTL', `${prefix}:lock:refresh:alice:demo`]));
  t.ok(ttl > 0 && ttl <= 10_000, 'it expires by itself');
  t.equal(await b.tryAcquire('refresh:alice:demo', 10_000), undefined, 'another instance cannot take it');
  t.ok(await b.tryAcquire('refresh:bob:demo', 10_000), 'another name can');
  t.ok(await h!.held());
  t.ok(await h!.release());
  t.notOk(await h!.held());
  t.ok(await b.tryAcquire('refresh:alice:demo', 10_000), 'free again');
});

t.test("a holder whose lock expired and was taken neither holds nor releases the new holder's lock", async (t) => {
  const { prefix, redis, a, b } = await backend(t);
  const old = (await a.tryAcquire('x', 10_000))!;
  // Its expiry, without waiting for it: the key goes as PX would make it go.
  await redis.sendCommand(['DEL', `${prefix}:lock:x`]);
  const now = (await b.tryAcquire('x', 10_000))!;
  t.ok(now);
  t.notOk(await old.held(), 'the old holder learns it lost the lock');
  t.notOk(await old.release(), 'and its release deletes nothing');
  t.ok(await now.held(), "the new holder's lock stands");
  t.not(old.token, now.token);
});

t.test('a ttl under a millisecond is still a valid PX', async (t) => {
  const { a } = await backend(t);
  const h = await a.tryAcquire('tiny', 0.2);
  t.ok(h, 'SET ... PX 1 rather than a Redis error for PX 0');
});
