import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import pino from 'pino';
import { Counter, Histogram, Registry } from 'prom-client';
import { Metrics, methodClass, RequestCounter, RequestHistogram, statusClass } from '../src/metrics.js';
import { COUNTS_KEY, observeStore } from '../src/store/observed.js';
import type { Connection, ConnectionStore } from '../src/store/types.js';
import { configDir, LogCapture, LOOPBACK_EGRESS, startProxy, startUpstream, viaProxy } from './support/servers.js';
import { LocalLockBackend, Locks } from '../src/store/lock.js';

/** One sample's value from Prometheus text, or undefined when absent. */
function sample(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `));
  return line === undefined ? undefined : Number(line.split(' ').at(-1));
}

t.test('metrics move with traffic', async (t) => {
  const up = await startUpstream((_req, res) => res.writeHead(404).end());
  const dir = configDir(`store: memory\n${LOOPBACK_EGRESS}`, { demo: `hosts: ["127.0.0.1:${up.port}"]\nupstream: http\nauth: { type: bearer }\n` });
  const proxy = await startProxy(dir);
  t.teardown(async () => {
    await proxy.close();
    await up.close();
  });
  const scrape = async () => {
    const r = await fetch(`${proxy.url}/metrics`);
    t.match(r.headers.get('content-type'), /^text\/plain/);
    return r.text();
  };
  const before = await scrape();
  for (const name of ['credproxy_refreshes_total', 'credproxy_replays_total', 'credproxy_open_tunnels', 'credproxy_store_errors_total', 'credproxy_upstream_latency_seconds']) {
    t.match(before, new RegExp(`# TYPE ${name} `), `${name} is exposed`);
  }
  t.equal(sample(before, 'credproxy_connections', 'status="active"'), 0);

  await proxy.connect('alice', 'demo', { credentials: { token: 'tok-1' } });
  await proxy.connect('bob', 'demo', { credentials: { token: 'tok-2' } });
  for (const method of ['GET', 'POST', 'PROPFIND']) {
    await viaProxy(proxy.port, `${up.origin}/x`, { method, headers: { 'X-Entity-Id': 'alice' } });
  }
  await viaProxy(proxy.port, `${up.origin}/x`, { headers: { 'X-Entity-Id': 'nobody' } });
  const after = await scrape();
  t.equal(sample(after, 'credproxy_requests_total', 'integration="demo",method="GET",status="4xx"'), 2, 'the 404 and the 424');
  t.equal(sample(after, 'credproxy_requests_total', 'integration="demo",method="POST",status="4xx"'), 1);
  t.equal(sample(after, 'credproxy_requests_total', 'integration="demo",method="OTHER",status="4xx"'), 1, 'unknown methods are one label value');
  t.equal(sample(after, 'credproxy_upstream_latency_seconds_count', 'integration="demo"'), 3, 'three requests reached the upstream');
  t.equal(sample(after, 'credproxy_connections', 'status="active"'), 2);
  t.ok(sample(after, 'credproxy_store_duration_seconds_count', 'op="put"')! >= 2);

  t.equal((await proxy.admin('DELETE', '/api/entities/bob/connections/demo')).status, 204);
  t.equal((await proxy.admin('DELETE', '/api/entities/bob/connections/demo')).status, 204, 'deleting twice counts once');
  await proxy.connect('alice', 'demo', { credentials: { token: 'tok-1b' } });
  const later = await scrape();
  t.equal(sample(later, 'credproxy_connections', 'status="active"'), 1, 'a replaced connection is not counted twice');
});

t.test('connection counts survive a restart (kept in the store, not scanned)', async (t) => {
  const data = mkdtempSync(join(tmpdir(), 'credproxy-metrics-'));
  const dir = configDir(`store: sqlite:${data}/c.db\n`, { demo: 'hosts: ["127.0.0.1:9"]\nupstream: http\nauth: { type: bearer }\n' });
  t.teardown(() => rmSync(data, { recursive: true, force: true }));
  const first = await startProxy(dir);
  await first.connect('alice', 'demo', { credentials: { token: 'tok-1' } });
  await first.close();
  const second = await startProxy(dir);
  t.teardown(() => second.close());
  const text = await (await fetch(`${second.url}/metrics`)).text();
  t.equal(sample(text, 'credproxy_connections', 'status="active"'), 1);
});

/** A store whose backend has gone away: every call fails as a dead backend's would. */
class DeadStore implements ConnectionStore {
  readonly kv = {
    get: () => Promise.reject(new Error('down')),
    set: () => Promise.reject(new Error('down')),
    delete: () => Promise.reject(new Error('down')),
    take: () => Promise.reject(new Error('down')),
  };
  readonly locks = new Locks(new LocalLockBackend());
  readonly rateLimit = { take: () => Promise.reject(new Error('down')) };
  get = () => Promise.reject(new Error('down'));
  put = (_c: Connection) => Promise.reject(new Error('down'));
  delete = () => Promise.reject(new Error('down'));
  list = () => Promise.reject(new Error('down'));
  scan = () => Promise.reject(new Error('down'));
  ping = () => Promise.reject(new Error('down'));
  close = () => Promise.resolve();
}

t.test('store errors are counted and a dead store does not break the scrape', async (t) => {
  const metrics = new Metrics();
  const store: ConnectionStore = observeStore(new DeadStore(), metrics, pino(new LogCapture()));
  await t.rejects(store.get('a', 'b'));
  await t.rejects(store.put({ entity: 'a', integration: 'b', scheme: 'bearer', params: {}, status: 'active', credentials: {}, created_at: 0, updated_at: 0 }));
  await t.rejects(store.ping());
  await t.rejects(store.list('a', ['b']));
  await t.rejects(store.delete('a', 'b'));
  const text = await metrics.registry.metrics();
  for (const op of ['get', 'put', 'ping', 'list', 'delete']) t.equal(sample(text, 'credproxy_store_errors_total', `op="${op}"`), 1, op);
  t.notMatch(text, /credproxy_connections\{/, 'no made-up counts');
});

t.test('label helpers are bounded', async (t) => {
  t.equal(methodClass('get'), 'GET');
  t.equal(methodClass(undefined), 'OTHER');
  t.equal(methodClass('PROPFIND'), 'OTHER');
  t.equal(statusClass(503), '5xx');
  t.equal(statusClass(0), '0xx');
});

t.test('counting never fails a write, and a damaged count record starts over', async (t) => {
  const up = await startUpstream();
  const dir = configDir(`store: memory\n${LOOPBACK_EGRESS}`, { demo: `hosts: ["127.0.0.1:${up.port}"]\nupstream: http\nauth: { type: bearer }\n` });
  const proxy = await startProxy(dir);
  t.teardown(async () => {
    await proxy.close();
    await up.close();
  });
  await proxy.runtime.store.kv.set(COUNTS_KEY, 'not json');
  t.equal((await proxy.connect('alice', 'demo', { credentials: { token: 'tok-1' } })).status, 200);
  const text = await (await fetch(`${proxy.url}/metrics`)).text();
  t.equal(sample(text, 'credproxy_connections', 'status="active"'), 1);
  // A store whose kv refuses writes: the connection is still stored, the miss is logged.
  const kv = proxy.runtime.store.kv;
  const set = kv.set;
  kv.set = () => Promise.reject(new Error('kv down'));
  t.teardown(() => {
    kv.set = set;
  });
  t.equal((await proxy.connect('bob', 'demo', { credentials: { token: 'tok-2' } })).status, 200);
  t.ok(await proxy.runtime.store.get('bob', 'demo'));
  t.match(proxy.logs.text, /could not update the connection counts/);
  t.equal(proxy.runtime.store.kv, kv, 'members the wrapper does not measure pass through');
});

t.test('credproxy\'s own failures and passthrough traffic are counted too', async (t) => {
  const up = await startUpstream();
  const net = await import('node:net');
  // A port with nothing behind it: the upstream of "down" cannot be reached.
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const deadPort = (s.address() as import('node:net').AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  const dir = configDir(`store: memory\n${LOOPBACK_EGRESS}`, { down: `hosts: ["127.0.0.1:${deadPort}"]\nupstream: http\nauth: { type: bearer }\n` });
  const proxy = await startProxy(dir);
  t.teardown(async () => {
    await proxy.close();
    await up.close();
  });
  await proxy.connect('alice', 'down', { credentials: { token: 'tok-1' } });
  const failed = await viaProxy(proxy.port, `http://127.0.0.1:${deadPort}/x`, { headers: { 'X-Entity-Id': 'alice' } });
  t.equal(failed.status, 502);
  t.equal(failed.headers['x-credproxy-error'], 'upstream_error');
  const passed = await viaProxy(proxy.port, `${up.origin}/y`, { method: 'DELETE' });
  t.equal(passed.status, 200);
  const text = await (await fetch(`${proxy.url}/metrics`)).text();
  t.equal(sample(text, 'credproxy_requests_total', 'integration="down",method="GET",status="5xx"'), 1);
  t.equal(sample(text, 'credproxy_upstream_latency_seconds_count', 'integration="down"'), undefined, 'no upstream answer, no upstream latency');
  t.equal(sample(text, 'credproxy_requests_total', 'integration="passthrough",method="DELETE",status="2xx"'), 1);
  t.equal(sample(text, 'credproxy_upstream_latency_seconds_count', 'integration="passthrough"'), 1);
});

t.test('the request-path counter and histogram expose exactly what prom-client would', async (t) => {
  const buckets = [0.005, 0.1, 1];
  const mine = new Registry();
  const theirs = new Registry();
  const c1 = new RequestCounter('c_total', 'help "c"', ['integration', 'method'] as const, mine);
  const c2 = new Counter({ name: 'c_total', help: 'help "c"', labelNames: ['integration', 'method'] as const, registers: [theirs] });
  const h1 = new RequestHistogram('h_seconds', 'help h', ['op'] as const, buckets, mine);
  const h2 = new Histogram({ name: 'h_seconds', help: 'help h', labelNames: ['op'] as const, buckets, registers: [theirs] });
  t.equal(await mine.metrics(), await theirs.metrics(), 'nothing observed yet');
  for (const [integration, method] of [['a', 'GET'], ['a', 'GET'], ['b"\\', 'POST']] as const) {
    c1.inc({ integration, method });
    c2.inc({ integration, method });
  }
  c1.inc({ integration: 'a', method: 'GET' }, 3);
  c2.inc({ integration: 'a', method: 'GET' }, 3);
  for (const [op, v] of [['get', 0.001], ['get', 0.005], ['get', 0.0051], ['put', 2], ['get', 1]] as const) {
    h1.observe({ op }, v);
    h2.observe({ op }, v);
  }
  t.equal(await mine.metrics(), await theirs.metrics(), 'same text exposition');
  // Cluster workers send this over IPC, as JSON.
  const json = async (r: Registry) => JSON.parse(JSON.stringify(await r.getMetricsAsJSON())) as unknown;
  t.same(await json(mine), await json(theirs), 'same JSON (cluster aggregation reads it)');
  t.throws(() => h1.observe({ op: 'get' }, NaN), TypeError);
  mine.resetMetrics();
  theirs.resetMetrics();
  t.equal(await mine.metrics(), await theirs.metrics(), 'reset empties both');
  t.equal(statusClass(204), '2xx');
  t.equal(statusClass(0), '0xx');
  t.equal(statusClass(700), '7xx', 'beyond the usual classes still says its class');
});

/** The per-request series `metrics.requests` turns off, by the names a scrape shows. */
const PER_REQUEST = ['credproxy_requests_total', 'credproxy_request_duration_seconds', 'credproxy_upstream_latency_seconds'];
/** Lines of these series, HELP and TYPE included. */
const perRequestLines = (text: string) => text.split('\n').filter((l) => PER_REQUEST.some((name) => l.includes(name)));

t.test('setRequestMetrics: off takes the series out of the registry, on brings them back from zero', async (t) => {
  const m = new Metrics();
  t.equal(m.requestsOn, true, 'on by default');
  m.requests.inc({ integration: 'a', method: 'GET', status: '2xx' });
  t.equal(sample(await m.registry.metrics(), 'credproxy_requests_total', 'integration="a",method="GET",status="2xx"'), 1);
  m.setRequestMetrics(false);
  t.equal(m.requestsOn, false);
  t.same(perRequestLines(await m.registry.metrics()), [], 'absent, HELP and TYPE too: not frozen at 1');
  t.notOk((await m.registry.getMetricsAsJSON()).some((x) => PER_REQUEST.includes(x.name)), 'absent from the JSON the --workers primary sums');
  m.setRequestMetrics(false);
  // A request already in flight when they were turned off may still write a cell.
  m.requests.inc({ integration: 'a', method: 'GET', status: '2xx' });
  m.setRequestMetrics(true);
  m.setRequestMetrics(true);
  const text = await m.registry.metrics();
  t.match(text, /# TYPE credproxy_requests_total counter/, 'registered again (once: a second call changes nothing)');
  t.equal(sample(text, 'credproxy_requests_total', 'integration="a",method="GET",status="2xx"'), undefined, 'from zero: neither the old count nor the stray one');
  m.upstreamLatency.observe({ integration: 'a' }, 0.01);
  t.equal(sample(await m.registry.metrics(), 'credproxy_upstream_latency_seconds_count', 'integration="a"'), 1);
});

t.test('metrics.requests: false leaves the per-request series out of /metrics, the rest stays; a reload turns them on from zero and off again', async (t) => {
  const up = await startUpstream();
  const settings = (requests: boolean) => `store: memory\n${LOOPBACK_EGRESS}metrics: { requests: ${requests} }\n`;
  const dir = configDir(settings(false), { demo: `hosts: ["127.0.0.1:${up.port}"]\nupstream: http\nauth: { type: bearer }\n` });
  const proxy = await startProxy(dir, { processMetrics: true });
  t.teardown(async () => {
    await proxy.close();
    await up.close();
  });
  const scrape = async () => (await fetch(`${proxy.url}/metrics`)).text();
  const reload = (requests: boolean) => {
    writeFileSync(join(dir, 'credproxy.yaml'), settings(requests));
    const outcome = proxy.reload();
    t.ok(outcome.ok);
    t.same(outcome.restartNeeded, [], 'metrics.requests applies live');
  };
  await proxy.connect('alice', 'demo', { credentials: { token: 'tok-1' } });
  const send = async (n: number) => {
    for (let i = 0; i < n; i++) t.equal((await viaProxy(proxy.port, `${up.origin}/x`, { headers: { 'X-Entity-Id': 'alice' } })).status, 200);
  };

  await send(3);
  await viaProxy(proxy.port, `${up.origin}/through`, {}); // passthrough: counted in the same series
  let text = await scrape();
  t.same(perRequestLines(text), [], 'no line of the per-request series after proxied requests');
  const m = proxy.runtime.metrics;
  for (const series of [m.requests, m.upstreamSeconds, m.upstreamLatency]) {
    t.same((await series.get()).values, [], `${series.name}: not even counted out of sight (the request path checks first)`);
  }
  t.match(text, /^process_cpu_user_seconds_total /m, 'process metrics stay');
  t.match(text, /^nodejs_heap_size_used_bytes /m);
  t.equal(sample(text, 'credproxy_connections', 'status="active"'), 1, 'connection counts stay');
  for (const name of ['credproxy_refreshes_total', 'credproxy_replays_total', 'credproxy_open_tunnels', 'credproxy_store_duration_seconds', 'credproxy_config_reloads_total']) {
    t.match(text, new RegExp(`# TYPE ${name} `), `${name} stays`);
  }

  reload(true);
  t.match(proxy.logs.text, /per-request metrics turned on by the reloaded settings/);
  text = await scrape();
  t.match(text, /# TYPE credproxy_requests_total counter/, 'back in /metrics');
  t.equal(sample(text, 'credproxy_requests_total', 'integration="demo",method="GET",status="2xx"'), undefined, 'the requests made while off were not counted');
  await send(2);
  text = await scrape();
  t.equal(sample(text, 'credproxy_requests_total', 'integration="demo",method="GET",status="2xx"'), 2, 'counted from zero');
  t.equal(sample(text, 'credproxy_request_duration_seconds_count', 'integration="demo"'), 2);
  t.equal(sample(text, 'credproxy_upstream_latency_seconds_count', 'integration="demo"'), 2);

  reload(false);
  t.match(proxy.logs.text, /per-request metrics turned off by the reloaded settings \(metrics\.requests: false\)/);
  await send(1);
  t.same(perRequestLines(await scrape()), [], 'gone again, not frozen at 2');
  reload(true);
  t.equal(sample(await scrape(), 'credproxy_requests_total', 'integration="demo",method="GET",status="2xx"'), undefined, 'on again: from zero, not 2');
});
