import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { parseWrk, wrkLoad, wrkScript, wrkSeconds, wrkVersion, WRK_MARK } from '../../bench/wrk.js';

/** Real output of `wrk -t 1 -c 4 -d 1s --timeout 10s -s <wrkScript(…)>` (wrk 4.1.0, Debian), a server answering every tenth request 503. */
const REAL_OUTPUT = `Running 1s test @ http://127.0.0.1:18765/
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.35ms    6.93ms  55.53ms   93.83%
    Req/Sec    12.70k     9.65k   24.37k    50.00%
  12606 requests in 1.01s, 2.23MB read
  Non-2xx or 3xx responses: 1260
Requests/sec:  12490.08
Transfer/sec:      2.21MB
credproxy-bench-wrk:{"requests":12606,"bytes":2340924,"duration_us":1009281,"p50_us":180,"p99_us":42059,"connect":0,"read":0,"write":0,"status":1260,"timeout":0}
`;

const installed = wrkVersion();

t.test("parseWrk reads done()'s line of real wrk output, in the bench's units", async (t) => {
  const r = parseWrk(REAL_OUTPUT);
  t.same(r, {
    requests: { total: 12606 },
    duration: 1.009281,
    throughput: { total: 2340924 },
    latency: { p50: 0.2, p99: 42.1 },
    errors: 0,
    timeouts: 0,
    non2xx: 1260,
  });
  // The same figures as wrk's own summary above it.
  t.match(REAL_OUTPUT, new RegExp(`${r.requests.total} requests in 1\\.01s`));
  t.match(REAL_OUTPUT, new RegExp(`Non-2xx or 3xx responses: ${r.non2xx}\\n`));
  t.equal(Math.round(r.requests.total / r.duration), 12490, 'Requests/sec as wrk prints it');
  t.match(parseWrk(`${WRK_MARK}{"requests":5,"bytes":10,"duration_us":2000000,"p50_us":1000,"p99_us":2500,"connect":1,"read":2,"write":3,"status":0,"timeout":4}\n`), { errors: 10, timeouts: 4, latency: { p50: 1, p99: 2.5 } }, 'socket errors and timeouts are errors');
  t.throws(() => parseWrk('unable to connect to 127.0.0.1:1 Connection refused\n'), /printed no credproxy-bench-wrk: line.*Connection refused/);
});

t.test('wrkScript: the request set once, values quoted as Lua strings, no per-request Lua', async (t) => {
  const s = wrkScript({ path: 'http://127.0.0.1:9/small', host: '127.0.0.1:9', headers: { 'X-Entity-Id': 'a"b\\c\n' } });
  t.match(s, 'wrk.path = "http://127.0.0.1:9/small"');
  t.match(s, 'wrk.headers["Host"] = "127.0.0.1:9"');
  t.match(s, 'wrk.headers["X-Entity-Id"] = "a\\"b\\\\c\\10"');
  t.notMatch(s, /function request|function response/, 'wrk formats the request once and calls no Lua per request');
  t.equal(wrkSeconds(0.5), 1, 'wrk takes whole seconds: at least one');
  t.equal(wrkSeconds(2.4), 2);
});

t.test('wrkVersion: undefined for a binary that is not there', async (t) => {
  t.equal(wrkVersion('/nonexistent/wrk'), undefined);
  if (installed !== undefined) t.match(installed, /^wrk \S+/);
});

t.test('wrkLoad drives a proxy with absolute-form requests (needs wrk)', { skip: installed === undefined ? 'wrk is not installed' : false }, async (t) => {
  const seen = { requests: 0, absolute: 0, host: 0, entity: 0 };
  const server = http.createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    seen.requests++;
    if (req.url === 'http://127.0.0.1:9/small') seen.absolute++;
    if (req.headers.host === '127.0.0.1:9') seen.host++;
    if (req.headers['x-entity-id'] === 'bench-user') seen.entity++;
    // Every fifth answer is not 2xx: wrk must count them.
    res.writeHead(seen.requests % 5 === 0 ? 502 : 200, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const port = (server.address() as AddressInfo).port;
  const r = await wrkLoad({ port, path: 'http://127.0.0.1:9/small', host: '127.0.0.1:9', headers: { 'X-Entity-Id': 'bench-user' }, connections: 2, duration: 0.2 });
  t.ok(r.requests.total > 0, 'requests completed');
  t.ok(r.duration >= 0.9 && r.duration < 3, `ran about one second (${r.duration} s)`);
  t.ok(r.requests.total <= seen.requests, 'no more answers than the server saw (some may be in flight when wrk stops)');
  t.same({ absolute: seen.absolute, host: seen.host, entity: seen.entity }, { absolute: seen.requests, host: seen.requests, entity: seen.requests }, 'every request: absolute-form target, Host of the target, the entity header');
  t.ok(Math.abs(r.non2xx - r.requests.total / 5) <= 2, `a fifth counted non-2xx (${r.non2xx} of ${r.requests.total})`);
  t.equal(r.errors, 0);
  t.ok(r.throughput.total > r.requests.total * 11 && r.latency.p99 >= r.latency.p50, 'bytes and latency read');
});

t.test('wrkLoad: a wrk that cannot connect is an error, not a zero', { skip: installed === undefined ? 'wrk is not installed' : false }, async (t) => {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await t.rejects(wrkLoad({ port, path: '/', host: 'x', headers: {}, connections: 1, duration: 1 }), /wrk|connect/i);
});
