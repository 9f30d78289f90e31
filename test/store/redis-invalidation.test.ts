import { createClient } from '@keyv/redis';
import pino from 'pino';
import t, { type Test } from 'tap';
import type { RedisCommander } from '../../src/store/redis-lock.js';
import { RedisInvalidation, type RedisSubscriber } from '../../src/store/redis-invalidation.js';
import { REDIS_URL, uniquePrefix } from '../support/redis.js';
import { LogCapture } from '../support/servers.js';
import { Waiter } from '../support/waiter.js';
import { within } from '../support/wait-for.js';

// Cached connections dropped across instances through the store are in test/store/redis.test.ts
// and test/oauth/cross-instance.test.ts; this is the channel itself, on the machine's Redis.
async function instance(t: Test, prefix: string) {
  const publisher = createClient({ url: REDIS_URL });
  const subscriber = createClient({ url: REDIS_URL });
  subscriber.on('error', () => {});
  await Promise.all([publisher.connect(), subscriber.connect()]);
  const logs = new LogCapture();
  const inv = new RedisInvalidation(publisher as unknown as RedisCommander, subscriber as unknown as RedisSubscriber, prefix, pino(logs));
  const keys = new Waiter<string>();
  let resets = 0;
  t.teardown(async () => {
    // Tests that already closed or destroyed the subscriber: node-redis throws on a second destroy.
    await inv.close().catch(() => {});
    publisher.destroy();
  });
  await inv.subscribe(keys.push, () => resets++);
  return { inv, keys, resets: () => resets, publisher, subscriber, logs };
}

/** The next key heard, or undefined if none comes within the deadline. */
async function next(keys: Waiter<string>): Promise<string | undefined> {
  let key: string | undefined;
  await within(keys.next().then((k) => (key = k)));
  return key;
}

t.test('a key one instance publishes reaches the others, not itself', async (t) => {
  const prefix = uniquePrefix();
  const a = await instance(t, prefix);
  const b = await instance(t, prefix);
  const other = await instance(t, uniquePrefix());
  t.ok(a.inv.live && b.inv.live, 'live once subscribed');
  await a.inv.publish('conn:alice:demo');
  await b.inv.publish('conn:bob:demo');
  t.equal(await next(b.keys), 'conn:alice:demo');
  t.equal(await next(a.keys), 'conn:bob:demo');
  // A marker after both: anything a saw of its own, or other saw of this prefix, would be queued before it.
  await b.inv.publish('marker');
  t.equal(await next(a.keys), 'marker', 'a never got its own message');
  t.equal(other.keys.length, 0, 'another prefix hears nothing');
});

t.test('a message not in the id\\nkey form is ignored', async (t) => {
  const prefix = uniquePrefix();
  const a = await instance(t, prefix);
  const b = await instance(t, prefix);
  await a.publisher.sendCommand(['PUBLISH', `${prefix}:invalidate`, 'no-newline']);
  await a.inv.publish('after');
  t.equal(await next(b.keys), 'after');
});

t.test('a lost subscriber connection makes the cache untrusted and empties it', async (t) => {
  const prefix = uniquePrefix();
  const a = await instance(t, prefix);
  t.equal(a.resets(), 0);
  a.subscriber.destroy();
  t.notOk(a.inv.live, 'not live without a subscriber');
  t.ok(a.resets() >= 1, 'the cache was told to empty itself');
  t.match(a.logs.text, /cache invalidation channel lost/);
});

t.test('close() ends it: no longer live', async (t) => {
  const a = await instance(t, uniquePrefix());
  await a.inv.close();
  t.notOk(a.inv.live);
});
