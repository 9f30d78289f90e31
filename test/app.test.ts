import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { startCredproxy } from '../src/app.js';
import { configDir, errorOf, integrationYaml, startProxy, startUpstream, viaProxy } from './support/servers.js';

t.test('a restart keeps connections (sqlite store in a temp dir), and the files hold no plaintext secret', async (t) => {
  const up = await startUpstream();
  t.teardown(() => up.close());
  const dir = configDir('', { svc: integrationYaml([`127.0.0.1:${up.port}`], '{ type: api_key }') });
  const data = join(dir, 'data');
  const settings = join(dir, 'credproxy.yaml');
  writeFileSync(settings, `store: sqlite:${data}/credproxy.db\n`);
  const secret = 'sk-persisted-0123456789abcdef';

  const first = await startProxy(dir, { env: { CREDPROXY_SECRET_KEY: '' } });
  t.equal((await first.connect('alice', 'svc', { credentials: { api_key: secret } })).status, 200);
  t.equal((await viaProxy(first.port, `${up.origin}/1`, { headers: { 'X-Entity-Id': 'alice' } })).status, 200);
  await first.close();
  t.match(first.logs.text, /generated a storage key/, 'no key given: one was generated into the data folder');
  t.equal(statSync(join(data, 'secret.key')).mode & 0o777, 0o600);

  const second = await startProxy(dir, { env: { CREDPROXY_SECRET_KEY: '' } });
  t.teardown(() => second.close());
  const r = await viaProxy(second.port, `${up.origin}/2`, { headers: { 'X-Entity-Id': 'alice' } });
  t.equal(r.status, 200);
  t.equal(up.seen.at(-1)!.headers.authorization, `Bearer ${secret}`, 'injected after the restart');
  t.notMatch(second.logs.text, /generated a storage key/, 'the key was read back');

  const bytes = Buffer.concat(readdirSync(data).filter((f) => f.startsWith('credproxy.db')).map((f) => readFileSync(join(data, f))));
  t.ok(bytes.length > 0);
  t.equal(bytes.includes(secret), false, 'the secret is not in the store files');
  t.notMatch(first.logs.text + second.logs.text, new RegExp(secret));
});

t.test('the admin token: generated once into the data folder, read back on the next start', async (t) => {
  const dir = configDir('');
  const data = join(dir, 'data');
  writeFileSync(join(dir, 'credproxy.yaml'), `store: sqlite:${data}/credproxy.db\n`);
  const first = await startProxy(dir, { env: { CREDPROXY_ADMIN_TOKEN: '' } });
  const token = readFileSync(join(data, 'admin.token'), 'utf8').trim();
  t.equal(statSync(join(data, 'admin.token')).mode & 0o777, 0o600);
  t.ok(token.length >= 24);
  const ok = await fetch(`${first.url}/api/integrations`, { headers: { authorization: `Bearer ${token}` } });
  t.equal(ok.status, 200);
  t.equal((await first.admin('GET', '/api/integrations')).status, 401, 'the test default token is not it');
  t.notMatch(first.logs.text, new RegExp(token), 'printed on stderr once, never logged');
  await first.close();
  const second = await startProxy(dir, { env: { CREDPROXY_ADMIN_TOKEN: '' } });
  t.teardown(() => second.close());
  t.match(second.logs.text, /admin token read from the data folder/);
  t.equal((await fetch(`${second.url}/api/integrations`, { headers: { authorization: `Bearer ${token}` } })).status, 200);

  const mem = await startProxy(configDir('store: memory\n'), { env: { CREDPROXY_ADMIN_TOKEN: '' } });
  t.teardown(() => mem.close());
  t.match(mem.logs.text, /generated one for this run/);
  t.equal((await mem.admin('GET', '/api/integrations')).status, 401);
});

t.test('a store that stops answering: 503 store_unavailable, nothing forwarded', async (t) => {
  const up = await startUpstream();
  t.teardown(() => up.close());
  const dir = configDir('', { svc: integrationYaml([`127.0.0.1:${up.port}`], '{ type: bearer }') });
  writeFileSync(join(dir, 'credproxy.yaml'), `store: sqlite:${join(dir, 'data')}/credproxy.db\n`);
  const proxy = await startProxy(dir);
  t.teardown(() => proxy.close());
  t.equal((await fetch(`${proxy.url}/readyz`)).status, 200);
  await proxy.runtime.store.close();

  const ready = await fetch(`${proxy.url}/readyz`);
  t.equal(ready.status, 503);
  t.equal(ready.headers.get('x-credproxy-error'), 'store_unavailable');
  const r = errorOf(await viaProxy(proxy.port, `${up.origin}/`, { headers: { 'X-Entity-Id': 'alice' } }));
  t.same([r.status, r.code], [503, 'store_unavailable']);
  t.equal(up.seen.length, 0);
  for (const [method, path, body] of [
    ['PUT', '/api/entities/alice/connections/svc', { credentials: { token: 'x' } }],
    ['GET', '/api/entities/alice/connections/svc', undefined],
    ['GET', '/api/entities/alice/connections', undefined],
    ['DELETE', '/api/entities/alice/connections/svc', undefined],
  ] as const) {
    const a = await proxy.admin(method, path, body);
    t.equal(a.status, 503, `${method} ${path}`);
    t.equal(a.headers.get('x-credproxy-error'), 'store_unavailable');
  }
});

t.test('a port in use fails the start, and the store it opened is closed again', async (t) => {
  const first = await startProxy(configDir('store: memory\n'));
  t.teardown(() => first.close());
  const dir = configDir('');
  const data = join(dir, 'data');
  writeFileSync(join(dir, 'credproxy.yaml'), `store: sqlite:${data}/credproxy.db\n`);
  await t.rejects(startCredproxy({ configDir: dir, host: '127.0.0.1', port: first.port, env: { CREDPROXY_ADMIN_TOKEN: 'x'.repeat(20) }, logger: first.runtime.log }), { code: 'EADDRINUSE' });
  // SQLite in WAL mode keeps -wal and -shm files exactly while a connection is open.
  t.same(readdirSync(data).filter((f) => f.startsWith('credproxy.db')), ['credproxy.db'], 'the database was closed');
});
