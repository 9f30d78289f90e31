import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { type CliIO } from '../../src/cli/admin.js';
import { runAuditCommand } from '../../src/cli/audit.js';
import { pollUntil } from '../support/poll.js';
import { ADMIN, integrationYaml, LOOPBACK_EGRESS, setup, startUpstream, viaProxy } from '../support/servers.js';

t.test('every request to an integration host is audited, with no secret, query value or body; GET /api/audit; credproxy audit', async (t) => {
  const other = await startUpstream();
  t.teardown(() => other.close());
  const auditDir = join(process.env.TMPDIR ?? '/tmp', `credproxy-audit-${process.pid}-${Date.now()}`);
  const file = join(auditDir, 'audit.log');
  const { up, proxy } = await setup(t, {
    settings: `store: memory\n${LOOPBACK_EGRESS}audit: { file: ${file} }\n`,
    integrations: (up) => ({
      svc: integrationYaml([`127.0.0.1:${up.port}`], '{ type: api_key, fields: [api_key] }', 'inject: { query: { key: "{{api_key}}" } }\n'),
    }),
  });
  await proxy.connect('alice', 'svc', { credentials: { api_key: 'SECRET-QUERY-KEY-1' } });
  await proxy.connect('bob', 'svc', { credentials: { api_key: 'SECRET-QUERY-KEY-2' } });
  const token = ((await (await proxy.admin('POST', '/api/entities/alice/tokens', {})).json()) as { token: string }).token;

  t.equal((await viaProxy(proxy.port, `${up.origin}/v1/items?key=client-sent&q=private-query`, { headers: { 'x-entity-id': 'alice' } })).status, 200);
  t.equal((await viaProxy(proxy.port, `${up.origin}/v1/post`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: 'BODY-SECRET-xyz' })).status, 200);
  t.equal((await viaProxy(proxy.port, `${up.origin}/v1/bob`, { headers: { 'x-entity-id': 'bob' } })).status, 200);
  t.equal((await viaProxy(proxy.port, `${up.origin}/v1/nobody`, { headers: { 'x-entity-id': 'carol' } })).status, 424);
  t.equal((await viaProxy(proxy.port, `${other.origin}/passthrough`)).status, 200);

  // Lines go out in batches, within AUDIT_FLUSH_MS.
  t.ok(await pollUntil(() => existsSync(file) && readFileSync(file, 'utf8').trim().split('\n').length >= 4, 2_000), 'the batch was written');
  const text = readFileSync(file, 'utf8');
  const lines = text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  t.equal(lines.length, 4, 'one line per request to an integration host; passthrough is not audited');
  t.match(lines[0], { entity: 'alice', integration: 'svc', method: 'GET', host: `127.0.0.1:${up.port}`, path: '/v1/items', status: 200, refreshed: false, replayed: false, client: null });
  t.ok((lines[0]!.bytes_out as number) > 0, 'bytes to the client');
  t.match(lines[1], { entity: 'alice', method: 'POST', path: '/v1/post' });
  t.ok((lines[1]!.bytes_in as number) >= 'BODY-SECRET-xyz'.length, 'the body counted, not kept');
  t.match(lines[3], { entity: 'carol', status: 424 });
  for (const secret of ['SECRET-QUERY-KEY', 'client-sent', 'private-query', 'BODY-SECRET', 'cpx_']) t.notMatch(text, secret, `no ${secret} in the audit log`);

  const api = (q: string) => proxy.admin('GET', `/api/audit${q}`).then(async (r) => ({ status: r.status, body: (await r.json()) as { entries: Array<Record<string, unknown>> } }));
  t.same((await api('?entity=alice')).body.entries.map((e) => e.path), ['/v1/items', '/v1/post']);
  t.same((await api('?entity=bob&integration=svc')).body.entries.map((e) => e.path), ['/v1/bob']);
  t.same((await api('?limit=1')).body.entries.map((e) => e.path), ['/v1/nobody']);
  t.same((await api(`?since=${encodeURIComponent(lines[2]!.time as string)}`)).body.entries.map((e) => e.path), ['/v1/bob', '/v1/nobody']);
  t.same((await api(`?since=${Date.parse(lines[3]!.time as string) + 1}`)).body.entries, []);
  for (const bad of ['?limit=0', '?limit=x', '?since=yesterday']) t.equal((await api(bad)).status, 400, bad);
  t.equal((await fetch(`${proxy.url}/api/audit`)).status, 401);

  let out = '';
  const io: CliIO = { stdout: (s) => (out += s), stderr: (s) => (out += s), env: { CREDPROXY_ADMIN_TOKEN: ADMIN }, readStdin: async () => '' };
  t.equal(await runAuditCommand(['audit', '--url', proxy.url, '--entity', 'alice'], io), 0);
  t.match(out, /^TIME\s+ENTITY\s+INTEGRATION\s+LABEL\s+METHOD/);
  t.match(out, /alice\s+svc\s+-\s+POST\s+\S+\s+\/v1\/post\s+200/, 'the default connection shows as -');
  out = '';
  t.equal(await runAuditCommand(['audit', '--url', proxy.url, '--entity', 'nobody'], io), 0);
  t.match(out, /no audit entries match/);
  t.equal(await runAuditCommand(['audit', '--bogus'], io), 2);
  t.equal(await runAuditCommand(['audit', '--url', proxy.url], { ...io, env: { CREDPROXY_ADMIN_TOKEN: 'wrong-0123456789abcdef' } }), 1);

  // --follow prints entries that arrive later, until stopped.
  out = '';
  const stop = new AbortController();
  const following = runAuditCommand(['audit', '--url', proxy.url, '--follow', '--json', '--entity', 'bob'], io, { pollMs: 20, signal: stop.signal });
  t.ok(await pollUntil(() => out.includes('/v1/bob'), 5000), 'the existing entry first');
  await viaProxy(proxy.port, `${up.origin}/v1/bob-later`, { headers: { 'x-entity-id': 'bob' } });
  t.ok(await pollUntil(() => out.includes('/v1/bob-later'), 5000), 'then the new one');
  stop.abort();
  t.equal(await following, 0);
  t.equal(out.split('\n').filter((l) => l.includes('/v1/bob"')).length, 1, 'an entry is printed once');
});

t.test('with audit.enabled: false, GET /api/audit answers 404 saying so, and credproxy audit prints that message', async (t) => {
  const { up, proxy } = await setup(t, {
    settings: `store: memory\n${LOOPBACK_EGRESS}audit: { enabled: false }\n`,
    integrations: (up) => ({ svc: integrationYaml([`127.0.0.1:${up.port}`], '{ type: api_key, fields: [api_key] }') }),
  });
  await proxy.connect('alice', 'svc', { credentials: { api_key: 'k-1' } });
  t.equal((await viaProxy(proxy.port, `${up.origin}/v1/items`, { headers: { 'x-entity-id': 'alice' } })).status, 200);

  const r = await proxy.admin('GET', '/api/audit?entity=alice');
  t.equal(r.status, 404);
  t.equal(r.headers.get('x-credproxy-error'), 'not_found');
  const body = (await r.json()) as { error: { code: string; message: string } };
  t.same(body, { error: { code: 'not_found', message: 'the audit log is turned off (audit.enabled: false in credproxy.yaml); set audit.enabled: true to record requests again' } });
  t.equal((await proxy.admin('GET', '/api/audit?limit=0')).status, 404, 'the log being off comes first: no bad_request to fix in vain');
  t.equal((await fetch(`${proxy.url}/api/audit`)).status, 401, 'still behind the admin token');

  let out = '';
  let err = '';
  const io: CliIO = { stdout: (s) => (out += s), stderr: (s) => (err += s), env: { CREDPROXY_ADMIN_TOKEN: ADMIN }, readStdin: async () => '' };
  t.equal(await runAuditCommand(['audit', '--url', proxy.url], io), 1, 'an API error: exit 1');
  t.equal(out, '', 'no table, no "no audit entries match"');
  t.match(err, /^credproxy: not_found \(404\): the audit log is turned off \(audit\.enabled: false in credproxy\.yaml\)/);
  err = '';
  const stop = new AbortController();
  t.equal(await runAuditCommand(['audit', '--url', proxy.url, '--follow'], io, { pollMs: 20, signal: stop.signal }), 1, '--follow stops with the message too');
  t.match(err, /audit log is turned off/);
});
