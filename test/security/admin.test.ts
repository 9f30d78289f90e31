import t from 'tap';
import { rawRequest } from '../support/raw.js';
import { ADMIN, configDir, startProxy } from '../support/servers.js';

/** Hostile admin API calls: each gets its documented error and stores nothing. */
t.test('bad admin bodies and calls are refused and nothing is stored', async (t) => {
  const dir = configDir('store: memory\nlimits: { admin_body_bytes: 4096 }\n', {
    demo: 'hosts: ["api.demo.test"]\nauth: { type: bearer }\n',
    keyed: 'hosts: ["api.keyed.test"]\nauth: { type: api_key }\ninject: { headers: { X-Key: "{{api_key}}" } }\n',
  });
  const proxy = await startProxy(dir);
  t.teardown(() => proxy.close());
  const path = '/api/entities/alice/connections/demo';
  const put = (body: string, headers: Record<string, string> = {}) =>
    fetch(`${proxy.url}${path}`, { method: 'PUT', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json', ...headers }, body });

  const cases: Array<[name: string, send: () => Promise<Response>, status: number, code: string]> = [
    ['not JSON', () => put('{"credentials": {"token": "abc"'), 400, 'bad_request'],
    ['JSON but an array', () => put('[1,2]'), 400, 'bad_request'],
    ['JSON but a string', () => put('"token"'), 400, 'bad_request'],
    ['JSON null', () => put('null'), 400, 'bad_request'],
    ['credentials of the wrong type', () => put('{"credentials": "tok"}'), 400, 'bad_request'],
    ['a credential value of the wrong type', () => put('{"credentials": {"token": 12345}}'), 400, 'bad_request'],
    ['CRLF in a credential value (header injection)', () => put(JSON.stringify({ credentials: { token: 'abc\r\nX-Evil: 1' } })), 400, 'bad_request'],
    ['a bare LF in a credential value', () => put(JSON.stringify({ credentials: { token: 'abc\nX-Evil: 1' } })), 400, 'bad_request'],
    ['NUL in a credential value', () => put(JSON.stringify({ credentials: { token: 'abc\u0000' } })), 400, 'bad_request'],
    ['an unknown credential field', () => put(JSON.stringify({ credentials: { token: 'a', extra: 'b' } })), 400, 'bad_request'],
    ['an unknown top-level key', () => put(JSON.stringify({ credentials: { token: 'a' }, status: 'active' })), 400, 'bad_request'],
    ['a scheme the integration does not offer', () => put(JSON.stringify({ scheme: 'basic', credentials: { token: 'a' } })), 400, 'bad_request'],
    ['params on an integration without params', () => put(JSON.stringify({ params: { sub: 'x' }, credentials: { token: 'a' } })), 400, 'bad_request'],
    ['a body over admin_body_bytes (declared)', () => put(JSON.stringify({ credentials: { token: 'a'.repeat(8000) } })), 413, 'payload_too_large'],
    [
      'a body over admin_body_bytes (chunked, undeclared)',
      () =>
        fetch(`${proxy.url}${path}`, {
          method: 'PUT',
          headers: { authorization: `Bearer ${ADMIN}` },
          body: new ReadableStream({
            start(c) {
              for (let i = 0; i < 10; i++) c.enqueue(new TextEncoder().encode('a'.repeat(1000)));
              c.close();
            },
          }),
          duplex: 'half',
        } as RequestInit),
      413,
      'payload_too_large',
    ],
    ['no admin token', () => fetch(`${proxy.url}${path}`, { method: 'PUT', body: '{"credentials":{"token":"a"}}' }), 401, 'unauthorized'],
    ['a wrong admin token', () => put('{"credentials":{"token":"a"}}', { authorization: 'Bearer wrong-token-0123456789' }), 401, 'unauthorized'],
    ['the admin token as Basic', () => put('{"credentials":{"token":"a"}}', { authorization: `Basic ${Buffer.from(`x:${ADMIN}`).toString('base64')}` }), 401, 'unauthorized'],
    ['an entity id with CRLF in the path', () => proxy.admin('PUT', '/api/entities/a%0d%0aX-Evil:1/connections/demo', { credentials: { token: 'a' } }), 400, 'bad_request'],
    ['an entity id with a malformed escape', () => proxy.admin('PUT', '/api/entities/a%zz/connections/demo', { credentials: { token: 'a' } }), 400, 'bad_request'],
    ['an unknown integration', () => proxy.admin('PUT', '/api/entities/alice/connections/nope', { credentials: { token: 'a' } }), 404, 'not_found'],
    ['a wrong method', () => proxy.admin('POST', path, { credentials: { token: 'a' } }), 405, 'method_not_allowed'],
  ];
  for (const [name, send, status, code] of cases) {
    await t.test(name, async (t) => {
      const r = await send();
      const text = await r.text();
      t.equal(r.status, status);
      t.equal(r.headers.get('x-credproxy-error'), code);
      t.equal((JSON.parse(text) as { error: { code: string } }).error.code, code);
      t.notMatch(text, /abc|X-Evil/, 'the answer does not echo the submitted value');
    });
  }
  const after = await proxy.admin('GET', '/api/entities/alice/connections');
  t.same(((await after.json()) as { connections: unknown[] }).connections, [], 'nothing was stored by any of them');

  await t.test('a declared Content-Length over the limit is refused before the body arrives', async (t) => {
    const r = await rawRequest(
      proxy.port,
      `PUT ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN}\r\nContent-Length: 999999\r\n\r\n{`,
    );
    t.equal(r.status, 413);
    t.equal(r.headers['x-credproxy-error'], 'payload_too_large');
  });

  await t.test('stored secrets never come back from the API', async (t) => {
    const secret = 'stored-secret-value-42';
    t.equal((await proxy.connect('alice', 'keyed', { credentials: { api_key: secret } })).status, 200);
    for (const p of ['/api/entities/alice/connections', '/api/entities/alice/connections/keyed', '/api/integrations', '/api/integrations/keyed', '/metrics']) {
      const r = await proxy.admin('GET', p);
      t.notMatch(await r.text(), secret, p);
    }
    t.notMatch(proxy.logs.text, secret, 'nor reach the logs');
  });
});
