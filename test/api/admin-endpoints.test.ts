import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import t from 'tap';
import { createLogger } from '../../src/log.js';
import { readOrCreateSecret } from '../../src/store/secret-file.js';
import { configDir, LOOPBACK_EGRESS, startProxy, startUpstream, viaProxy } from '../support/servers.js';

t.test('health, readiness, metrics, integrations and connections endpoints', async (t) => {
  const up = await startUpstream();
  const dir = configDir('store: memory\n', {
    keyed: `hosts: ["127.0.0.1:${up.port}"]\nupstream: http\nauth: { type: api_key }\ninject: { query: { key: "{{api_key}}" } }\n`,
    basic: `hosts: ["localhost:${up.port}"]\nupstream: http\nparams: [{ name: region, pattern: "^[a-z]+$", default: eu }]\nauth: { type: basic }\n`,
  });
  const proxy = await startProxy(dir);
  t.teardown(async () => {
    await proxy.close();
    await up.close();
  });
  t.equal((await fetch(`${proxy.url}/healthz`)).status, 200);
  t.equal((await fetch(`${proxy.url}/readyz`)).status, 200);
  t.match(await (await fetch(`${proxy.url}/metrics`)).text(), /credproxy|# HELP/);
  t.equal((await fetch(`${proxy.url}/nothing`)).status, 404);
  t.equal((await fetch(`${proxy.url}/healthz`, { method: 'DELETE' })).status, 405);
  t.equal((await fetch(`${proxy.url}/api/integrations`)).status, 401);
  const list = (await (await proxy.admin('GET', '/api/integrations')).json()) as { integrations: { name: string }[] };
  t.same(list.integrations.map((i) => i.name).sort(), ['basic', 'keyed']);
  const one = (await (await proxy.admin('GET', '/api/integrations/basic')).json()) as { schemes: { fields: { name: string }[] }[] };
  t.same(one.schemes[0]!.fields.map((f) => f.name), ['username', 'password']);
  t.equal((await proxy.admin('GET', '/api/integrations/none')).status, 404);
  t.equal((await proxy.admin('GET', '/api/integrations/%zz')).status, 400);

  t.equal((await proxy.connect('alice', 'keyed', { credentials: { api_key: 'k-123' } })).status, 200);
  t.equal((await proxy.connect('alice', 'basic', { credentials: { username: 'u', password: 'p:w' } })).status, 200);
  t.equal((await proxy.connect('alice', 'basic', { credentials: { username: 'u:x', password: 'p' } })).status, 400);
  t.equal((await proxy.connect('alice', 'basic', { scheme: 'nope', credentials: {} })).status, 400);
  t.equal((await proxy.connect('alice', 'basic', { credentials: [] })).status, 400);
  t.equal((await proxy.connect('alice', 'basic', { params: { region: 'EU!' }, credentials: { username: 'u', password: 'p' } })).status, 400);
  t.equal((await proxy.connect('alice', 'basic', { extra: 1 })).status, 400);
  t.equal((await proxy.connect('alice', 'basic', 'not json')).status, 400);
  const conns = (await (await proxy.admin('GET', '/api/entities/alice/connections')).json()) as { connections: { integration: string }[] };
  t.equal(conns.connections.length, 2);

  const k = await viaProxy(proxy.port, `${up.origin}/q?key=spoof&x=1`, { headers: { 'X-Entity-Id': 'alice' } });
  t.equal(k.status, 200);
  t.equal(up.seen.at(-1)!.url, '/q?x=1&key=k-123');
  const b = await viaProxy(proxy.port, `http://localhost:${up.port}/`, {
    headers: { 'Proxy-Authorization': `Basic ${Buffer.from('alice:whatever').toString('base64')}` },
  });
  t.equal(b.status, 200);
  t.equal(up.seen.at(-1)!.headers.authorization, `Basic ${Buffer.from('u:p:w').toString('base64')}`);

  t.equal((await viaProxy(proxy.port, `${up.origin}/`, {})).status, 400, 'entity_required');
  t.equal((await viaProxy(proxy.port, `${up.origin}/`, { headers: { 'X-Entity-Id': 'bob' } })).status, 424);
  t.equal((await viaProxy(proxy.port, `${up.origin}/`, { headers: { 'X-Entity-Id': '-bad' } })).status, 400);

  t.equal((await proxy.admin('DELETE', '/api/entities/alice/connections/keyed')).status, 204);
  t.equal((await proxy.admin('GET', '/api/entities/alice/connections/keyed')).status, 404);
  t.equal((await proxy.admin('GET', '/api/entities/alice/connections/none')).status, 404);
});

t.test('passthrough deny, an unreachable upstream and a malformed request line', async (t) => {
  const dir = configDir('store: memory\npassthrough: deny\n');
  const proxy = await startProxy(dir);
  t.teardown(() => proxy.close());
  const r = await viaProxy(proxy.port, 'http://127.0.0.1:1/');
  t.equal(r.status, 403);
  t.equal(r.headers['x-credproxy-error'], 'host_denied');
  const raw = await new Promise<string>((resolve) => {
    const s = net.connect(proxy.port, '127.0.0.1', () => s.write('BROKEN\r\n\r\n'));
    let out = '';
    s.on('data', (d) => (out += d.toString()));
    s.on('close', () => resolve(out));
  });
  t.match(raw, /^HTTP\/1\.1 400/);
});

t.test('passthrough to an upstream that is down answers 502 upstream_error', async (t) => {
  const proxy = await startProxy(configDir(`store: memory\n${LOOPBACK_EGRESS}`));
  t.teardown(() => proxy.close());
  const r = await viaProxy(proxy.port, 'http://127.0.0.1:1/');
  t.equal(r.status, 502);
  t.equal(r.headers['x-credproxy-error'], 'upstream_error');
});

t.test('generated secrets are created once with mode 0600; loggers redact', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'credproxy-secret-'));
  const path = join(dir, 'sub', 'secret.key');
  const first = readOrCreateSecret(path);
  t.equal(first.created, true);
  t.equal(statSync(path).mode & 0o777, 0o600);
  t.same(readOrCreateSecret(path), { value: first.value, created: false });
  t.equal(readFileSync(path, 'utf8').trim(), first.value);
  const lines: string[] = [];
  const log = createLogger({ destination: { write: (s: string) => void lines.push(s) } });
  log.info({ access_token: 'sekrit', headers: { authorization: 'Bearer x' } }, 'hello');
  t.notMatch(lines.join(''), /sekrit|Bearer x/);
  t.ok(createLogger({ level: 'silent' }));
});
