import t from 'tap';
import type { AuditEntry } from '../../../src/audit/audit-log.js';
import { tally } from '../../../src/ui/dashboard/activity.js';
import { get, signIn } from '../../support/dashboard.js';
import { configDir, startProxy, startUpstream, viaProxy } from '../../support/servers.js';

const entry = (integration: string, status: number, refreshed = false) => ({ integration, status, refreshed }) as AuditEntry;

t.test('tally: per integration, by status class, busiest first', async (t) => {
  const rows = tally([entry('a', 200), entry('b', 404), entry('b', 502), entry('b', 200, true), entry('a', 301)]);
  t.same(
    rows.map((r) => [r.integration, r.total, r.counts, r.refreshed]),
    [
      ['b', 3, { '2xx': 1, '3xx': 0, '4xx': 1, '5xx': 1 }, 1],
      ['a', 2, { '2xx': 1, '3xx': 1, '4xx': 0, '5xx': 0 }, 0],
    ],
  );
});

t.test("the activity page charts the last hour's requests from the audit log", async (t) => {
  const up = await startUpstream((req, res) => void res.writeHead(req.url === '/missing' ? 404 : 200).end('ok'));
  t.teardown(() => up.close());
  const p = await startProxy(configDir('store: memory\n', { svc: `hosts: ["127.0.0.1:${up.port}"]\nupstream: http\nauth: { type: api_key }\n` }));
  t.teardown(() => p.close());
  const { cookie } = await signIn(p);
  t.match(await (await get(p, '/ui/activity', cookie)).text(), 'No proxied request in the last hour');
  await p.connect('alice', 'svc', { credentials: { api_key: 'k-secret-value' } });
  for (const path of ['/a', '/b', '/missing']) await viaProxy(p.port, `http://127.0.0.1:${up.port}${path}`, { headers: { 'x-entity-id': 'alice' } });
  const r = await get(p, '/ui/activity', cookie);
  t.equal(r.status, 200);
  t.equal(r.headers.get('cache-control'), 'no-store');
  const page = await r.text();
  t.match(page, /3 proxied requests in the last hour/);
  t.match(page, /<svg class="chart" role="img"[^>]*>.*<title>svc: 2 × 2xx<\/title>.*<title>svc: 1 × 4xx<\/title>/s);
  t.match(page, /<tr><td>svc<\/td><td>3<\/td><td>2<\/td><td>0<\/td><td>1<\/td><td>0<\/td><td>0<\/td><\/tr>/);
  t.notMatch(page, 'k-secret-value');
});

t.test('with audit.enabled: false, the activity and connection pages say the audit log is off instead of showing none', async (t) => {
  const up = await startUpstream((_req, res) => void res.writeHead(200).end('ok'));
  t.teardown(() => up.close());
  const p = await startProxy(configDir('store: memory\naudit: { enabled: false }\n', { svc: `hosts: ["127.0.0.1:${up.port}"]\nupstream: http\nauth: { type: api_key }\n` }));
  t.teardown(() => p.close());
  const { cookie } = await signIn(p);
  await p.connect('alice', 'svc', { credentials: { api_key: 'k-secret-value' } });
  await viaProxy(p.port, `http://127.0.0.1:${up.port}/a`, { headers: { 'x-entity-id': 'alice' } });
  const off = /the audit log is turned off \(audit\.enabled: false in credproxy\.yaml\); set audit\.enabled: true to record requests again/;
  const activity = await get(p, '/ui/activity', cookie);
  t.equal(activity.status, 200);
  const page = await activity.text();
  t.match(page, off);
  t.notMatch(page, 'No proxied request in the last hour', 'not an empty hour');
  const connection = await get(p, '/ui/entities/alice/connections/svc', cookie);
  t.equal(connection.status, 200, 'the connection page still shows the connection');
  const text = await connection.text();
  t.match(text, /<h2>Recent requests<\/h2><p>Not recorded: the audit log is turned off/);
  t.notMatch(text, 'No request in the audit log yet');
});
