import t from 'tap';
import { configDir, startProxy, startUpstream, viaProxy, type TestProxy, type Upstream } from '../support/servers.js';
import { cleanPrefix, REDIS_URL, RedisRelay, uniquePrefix } from '../support/redis.js';
import { pollUntil } from '../support/poll.js';
import type { RedisTuning } from '../../src/store/redis.js';

interface Fixture {
  up: Upstream;
  dir: string;
  prefix: string;
}

async function fixture(t: { teardown(fn: () => unknown): void }, store = REDIS_URL): Promise<Fixture> {
  const up = await startUpstream();
  const prefix = uniquePrefix();
  t.teardown(() => up.close());
  t.teardown(() => cleanPrefix(prefix));
  const dir = configDir(`store: ${store}\nstore_prefix: ${prefix}\n`, {
    demo: `hosts: ["127.0.0.1:${up.port}"]\nupstream: http\nauth: { type: bearer }\n`,
  });
  return { up, dir, prefix };
}

async function instance(t: { teardown(fn: () => unknown): void }, f: Fixture, redis?: Partial<RedisTuning>): Promise<TestProxy> {
  const p = await startProxy(f.dir, redis ? { redis } : {});
  t.teardown(() => p.close());
  return p;
}

const as = (entity: string) => ({ headers: { 'X-Entity-Id': entity } });

t.test('two instances on one Redis: a connection stored through A is used by B', async (t) => {
  const f = await fixture(t);
  const a = await instance(t, f);
  const b = await instance(t, f);
  t.equal((await a.connect('alice', 'demo', { credentials: { token: 'tok-alice-1' } })).status, 200);
  const r = await viaProxy(b.port, `${f.up.origin}/x`, as('alice'));
  t.equal(r.status, 200);
  t.equal(f.up.seen.at(-1)?.headers.authorization, 'Bearer tok-alice-1');
  const listed = (await (await b.admin('GET', '/api/entities/alice/connections')).json()) as { connections: Array<{ integration: string }> };
  t.same(listed.connections.map((c) => c.integration), ['demo']);
  t.notMatch(a.logs.text + b.logs.text, /tok-alice-1/);
});

t.test('an update on A and a delete on B reach the other instance within 1 s', async (t) => {
  const f = await fixture(t);
  const a = await instance(t, f);
  const b = await instance(t, f);
  await a.connect('bob', 'demo', { credentials: { token: 'tok-bob-1' } });
  // Both instances now hold bob's connection in their caches.
  t.equal((await viaProxy(a.port, `${f.up.origin}/x`, as('bob'))).status, 200);
  t.equal((await viaProxy(b.port, `${f.up.origin}/x`, as('bob'))).status, 200);

  await a.connect('bob', 'demo', { credentials: { token: 'tok-bob-2' } });
  t.ok(
    await pollUntil(async () => (await viaProxy(b.port, `${f.up.origin}/x`, as('bob'))).status === 200 && f.up.seen.at(-1)?.headers.authorization === 'Bearer tok-bob-2'),
    'B injects the updated token',
  );

  t.equal((await b.admin('DELETE', '/api/entities/bob/connections/demo')).status, 204);
  let last = 0;
  t.ok(
    await pollUntil(async () => {
      last = (await viaProxy(a.port, `${f.up.origin}/x`, as('bob'))).status;
      return last === 424;
    }),
    'A stops injecting: connection_missing',
  );
  const seenBefore = f.up.seen.length;
  const r = await viaProxy(a.port, `${f.up.origin}/x`, as('bob'));
  t.equal(r.headers['x-credproxy-error'], 'connection_missing');
  t.equal(f.up.seen.length, seenBefore, 'nothing forwarded after the delete');
});

t.test('Redis unreachable: 503 store_unavailable and readyz 503, then recovery without a restart', async (t) => {
  const relay = await new RedisRelay().start();
  t.teardown(() => relay.close());
  const f = await fixture(t, relay.url);
  const p = await instance(t, f, { opTimeoutMs: 1_000 });
  await p.connect('carol', 'demo', { credentials: { token: 'tok-carol' } });
  t.equal((await viaProxy(p.port, `${f.up.origin}/x`, as('carol'))).status, 200);
  t.equal((await fetch(`${p.url}/readyz`)).status, 200);

  await relay.cut();
  const seenBefore = f.up.seen.length;
  let r = await viaProxy(p.port, `${f.up.origin}/x`, as('carol'));
  // The first request may still be served from the cache for the instant before the
  // subscriber notices the cut; within the 1 s contract every request must be refused.
  t.ok(await pollUntil(async () => (r = await viaProxy(p.port, `${f.up.origin}/x`, as('carol'))).status === 503));
  t.equal(r.headers['x-credproxy-error'], 'store_unavailable');
  t.equal(r.json<{ error: { code: string } }>().error.code, 'store_unavailable');
  const other = await viaProxy(p.port, `${f.up.origin}/x`, as('dave'));
  t.equal(other.status, 503, 'an entity without a connection is 503 too, never 424 or a 401');
  t.ok(f.up.seen.slice(seenBefore).every((s) => s.headers.authorization === 'Bearer tok-carol'), 'nothing was forwarded without its credential');
  const ready = await fetch(`${p.url}/readyz`);
  t.equal(ready.status, 503);
  t.equal(ready.headers.get('x-credproxy-error'), 'store_unavailable');
  t.equal((await p.admin('GET', '/api/entities/carol/connections/demo')).status, 503);
  t.equal((await p.connect('carol', 'demo', { credentials: { token: 'tok-carol-2' } })).status, 503, 'a write is refused, not pretended');
  t.equal((await fetch(`${p.url}/healthz`)).status, 200, 'the process is up');

  await relay.restore();
  t.ok(await pollUntil(async () => (await fetch(`${p.url}/readyz`)).status === 200, 15_000), 'ready again by itself');
  const back = await viaProxy(p.port, `${f.up.origin}/x`, as('carol'));
  t.equal(back.status, 200);
  t.equal(f.up.seen.at(-1)?.headers.authorization, 'Bearer tok-carol', 'the refused write changed nothing');
});

t.test('a Redis store without CREDPROXY_SECRET_KEY does not start', async (t) => {
  const f = await fixture(t);
  await t.rejects(startProxy(f.dir, { env: { CREDPROXY_SECRET_KEY: '' } }), /CREDPROXY_SECRET_KEY/);
});
