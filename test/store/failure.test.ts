import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import t from 'tap';
import { CredproxyError } from '../../src/errors.js';
import { describeCause, storeCall, storeUnavailable, StoreUnavailableError } from '../../src/store/failure.js';
import { cleanPrefix, RedisRelay, uniquePrefix } from '../support/redis.js';
import { logLine } from '../support/log-wait.js';
import { pollUntil } from '../support/poll.js';
import { configDir, errorOf, integrationYaml, startProxy, startUpstream, viaProxy, type TestProxy } from '../support/servers.js';

const as = (entity: string) => ({ headers: { 'X-Entity-Id': entity } });

/** The credproxy_store_failures_total value for `op`, as a scrape would show it. */
async function failures(p: TestProxy, op: string): Promise<number> {
  const m = await p.runtime.metrics.registry.getSingleMetric('credproxy_store_failures_total')?.get();
  return m?.values.find((v) => v.labels.op === op)?.value ?? 0;
}

t.test('storeUnavailable keeps the cause and lets an answer that is already decided pass', async (t) => {
  const cause = new Error('connect ECONNREFUSED 127.0.0.1:6379');
  const e = storeUnavailable(cause, 'connection.get');
  t.ok(e instanceof StoreUnavailableError);
  t.same([e.status, e.code, e.message, e.cause], [503, 'store_unavailable', 'the store does not answer', cause]);
  const decided = new CredproxyError('bad_request', 'no');
  t.equal(storeUnavailable(decided, 'link'), decided);
  await t.rejects(storeCall('rate_limit', () => Promise.reject(cause), 'why'), { code: 'store_unavailable', message: 'why', op: 'rate_limit' });
  t.equal(await storeCall('ping', () => Promise.resolve(7)), 7);
});

t.test('the cause as logged: kind, code and message, with no user information of a URL', async (t) => {
  const err = Object.assign(new Error('cannot reach redis://admin:hunter2@db:6379'), { code: 'ECONNREFUSED' });
  t.same(describeCause(err), { type: 'Error', code: 'ECONNREFUSED', message: 'cannot reach redis://***@db:6379' });
  t.same(describeCause('postgres://u:p@h/db down'), { type: 'string', message: 'postgres://***@h/db down' });
});

t.test('a closed store: 503 store_unavailable through the proxy and the admin API, logged with its cause and counted', async (t) => {
  const up = await startUpstream();
  t.teardown(() => up.close());
  const dir = configDir('', { svc: integrationYaml([`127.0.0.1:${up.port}`], '{ type: bearer }') });
  writeFileSync(join(dir, 'credproxy.yaml'), `store: sqlite:${join(dir, 'data')}/credproxy.db\n`);
  const p = await startProxy(dir);
  t.teardown(() => p.close());
  await p.runtime.store.close();

  const r = errorOf(await viaProxy(p.port, `${up.origin}/`, as('alice')));
  t.same([r.status, r.code, r.header], [503, 'store_unavailable', 'store_unavailable']);
  t.equal(up.seen.length, 0, 'nothing forwarded');
  t.equal(await failures(p, 'connection.get'), 1, 'counted once, with the operation');
  t.ok(await logLine(p.logs, /"op":"connection\.get".*"cause":\{"type":"StoreClosedError".*store unavailable/), 'the log line carries the cause');

  const a = await p.admin('GET', '/api/entities/alice/connections/svc');
  t.equal(a.status, 503);
  t.equal(a.headers.get('x-credproxy-error'), 'store_unavailable');
  t.same(await a.json(), { error: { code: 'store_unavailable', message: 'the store does not answer' } });
  t.equal(await failures(p, 'connection.get'), 2);
  const ready = await fetch(`${p.url}/readyz`);
  t.equal(ready.status, 503);
  t.equal(await failures(p, 'ping'), 1);
  t.equal(p.logs.lines.filter((l) => /store unavailable/.test(l)).length, 3, 'one line per answer');
});

t.test('Redis cut off behind a relay: the proxy and the admin API answer 503, and the log names the driver failure', async (t) => {
  const relay = await new RedisRelay().start();
  t.teardown(() => relay.close());
  const up = await startUpstream();
  t.teardown(() => up.close());
  const prefix = uniquePrefix();
  t.teardown(() => cleanPrefix(prefix));
  const dir = configDir(`store: ${relay.url}\nstore_prefix: ${prefix}\n`, {
    demo: `hosts: ["127.0.0.1:${up.port}"]\nupstream: http\nauth: { type: bearer }\n`,
  });
  const p = await startProxy(dir, { redis: { opTimeoutMs: 1_000 } });
  t.teardown(() => p.close());
  await relay.cut();

  let status = 0;
  t.ok(await pollUntil(async () => (status = (await viaProxy(p.port, `${up.origin}/x`, as('dave'))).status) === 503), `proxy: ${status}`);
  const a = await p.admin('GET', '/api/entities/dave/connections');
  t.equal(a.status, 503);
  t.equal(a.headers.get('x-credproxy-error'), 'store_unavailable');
  t.ok(await failures(p, 'connection.get') >= 1);
  t.ok(await failures(p, 'connection.list') >= 1);
  t.ok(await logLine(p.logs, /"op":"connection\.list".*"cause":\{"type":"[A-Za-z]+".*"message":".+".*store unavailable/));
});
