import t from 'tap';
import { LocalRateLimit } from '../../src/store/rate-limit.js';
import { cleanPrefix, REDIS_URL, uniquePrefix } from '../support/redis.js';
import { configDir, errorOf, integrationYaml, setup, startProxy, startUpstream, viaProxy } from '../support/servers.js';

t.test('the token bucket: a minute of burst, then the steady rate', async (t) => {
  let now = 1_000_000;
  const b = new LocalRateLimit(() => now);
  for (let i = 0; i < 3; i++) t.same(await b.take('k', 3), { allowed: true, retryAfterMs: 0 });
  t.same(await b.take('k', 3), { allowed: false, retryAfterMs: 20_000 }, 'a token every 20 s at 3 per minute');
  t.equal((await b.take('other', 3)).allowed, true, 'buckets are per key');
  now += 20_000;
  t.equal((await b.take('k', 3)).allowed, true, 'refilled');
  t.equal((await b.take('k', 3)).allowed, false);
  now += 10 * 60_000;
  for (let i = 0; i < 3; i++) t.equal((await b.take('k', 3)).allowed, true, 'never more than capacity');
  t.equal((await b.take('k', 3)).allowed, false);
});

t.test('over limits.requests_per_minute: 429 rate_limited with Retry-After, not forwarded; per entity and integration', async (t) => {
  const { up, proxy } = await setup(t, {
    settings: 'store: memory\nlimits: { requests_per_minute: 2 }\n',
    integrations: (up) => ({
      a: integrationYaml([`127.0.0.1:${up.port}`], '{ type: bearer }', 'paths: ["/a"]\n'),
      b: integrationYaml([`127.0.0.1:${up.port}`], '{ type: bearer }', 'paths: ["/b"]\nlimits: { requests_per_minute: 1 }\n'),
    }),
  });
  for (const e of ['alice', 'bob']) for (const i of ['a', 'b']) await proxy.connect(e, i, { credentials: { token: `${e}-${i}` } });
  const get = (path: string, entity: string) => viaProxy(proxy.port, `http://127.0.0.1:${up.port}${path}`, { headers: { 'x-entity-id': entity } });
  t.equal((await get('/a/1', 'alice')).status, 200);
  t.equal((await get('/a/2', 'alice')).status, 200);
  const over = await get('/a/3', 'alice');
  const e = errorOf(over);
  t.same([e.status, e.code, e.header], [429, 'rate_limited', 'rate_limited']);
  t.ok(Number(over.headers['retry-after']) >= 1 && Number(over.headers['retry-after']) <= 30, `Retry-After ${over.headers['retry-after']}`);
  t.match(e.message, /"alice" is over 2 requests per minute to integration "a"/);
  t.notOk(up.seen.some((s) => s.url === '/a/3'), 'not forwarded');
  t.equal((await get('/a/1', 'bob')).status, 200, 'another entity has its own bucket');
  t.equal((await get('/b/1', 'alice')).status, 200, 'another integration too');
  t.equal((await get('/b/2', 'alice')).status, 429, "the integration's own limit wins");
});

t.test('with a Redis store the buckets are shared by every instance', async (t) => {
  const up = await startUpstream();
  t.teardown(() => up.close());
  const prefix = uniquePrefix();
  t.teardown(() => cleanPrefix(prefix));
  const dir = configDir(`store: ${REDIS_URL}\nstore_prefix: ${prefix}\n`, {
    svc: integrationYaml([`127.0.0.1:${up.port}`], '{ type: bearer }', 'limits: { requests_per_minute: 3 }\n'),
  });
  const a = await startProxy(dir);
  t.teardown(() => a.close());
  const b = await startProxy(dir);
  t.teardown(() => b.close());
  await a.connect('carol', 'svc', { credentials: { token: 'carol-tok' } });
  const via = (p: typeof a) => viaProxy(p.port, `${up.origin}/x`, { headers: { 'x-entity-id': 'carol' } });
  const statuses = [await via(a), await via(b), await via(a), await via(b)].map((r) => r.status);
  t.same(statuses, [200, 200, 200, 429], 'three tokens in all, taken through either instance');
  const last = await via(a);
  t.equal(last.status, 429);
  t.ok(Number(last.headers['retry-after']) >= 1);
  t.equal(up.seen.length, 3);
});
