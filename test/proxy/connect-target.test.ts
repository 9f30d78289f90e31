import t from 'tap';
import { parseConnectTarget } from '../../src/proxy/connect-target.js';
import { CredproxyError } from '../../src/errors.js';
import { configDir, startProxy } from '../support/servers.js';
import { connectVia } from '../support/tunnel.js';

t.test('authority-form targets are parsed and normalised', async (t) => {
  t.same(parseConnectTarget('api.example.com:443'), { hostname: 'api.example.com', port: 443 });
  t.same(parseConnectTarget('API.Example.COM.:8443'), { hostname: 'api.example.com', port: 8443 });
  t.same(parseConnectTarget('127.0.0.1:1'), { hostname: '127.0.0.1', port: 1 });
  t.same(parseConnectTarget('[::1]:65535'), { hostname: '::1', port: 65535 });
  t.same(parseConnectTarget('[2001:DB8::1]:443'), { hostname: '2001:db8::1', port: 443 });
  t.same(parseConnectTarget('bücher.example:443'), { hostname: 'xn--bcher-kva.example', port: 443 });
});

const BAD = [
  'api.example.com', // no port
  'api.example.com:', // empty port
  'api.example.com:0',
  'api.example.com:65536',
  'api.example.com:443443',
  'api.example.com:+443',
  'api.example.com:-1',
  'api.example.com:https',
  'user@api.example.com:443',
  'user:pw@api.example.com:443',
  'api.example.com:443/path',
  'api.example.com:443?x=1',
  'api.example.com:443#f',
  'http://api.example.com:443',
  '::1:443', // IPv6 without brackets
  '[::1]', // no port
  '[::1:443',
  '[api.example.com]:443', // brackets are for IPv6 only
  '[::1]:443:1',
  ':443',
  'a b:443',
  'api..example.com:443',
  'api.example.com\\@evil.com:443',
  '*',
  '',
];

t.test('anything else is bad_request', async (t) => {
  for (const raw of BAD) {
    t.throws(() => parseConnectTarget(raw), CredproxyError, raw);
    try {
      parseConnectTarget(raw);
    } catch (err) {
      t.equal((err as CredproxyError).code, 'bad_request', raw);
    }
  }
  t.match(String((() => { try { parseConnectTarget(`${'a'.repeat(300)}:443/x`); } catch (e) { return (e as Error).message; } return ''; })()), /…/, 'a long target is cut in the message');
});

t.test('malformed CONNECT targets get 400 in the documented JSON + X-Credproxy-Error form', async (t) => {
  const proxy = await startProxy(configDir('store: memory\n'));
  t.teardown(() => proxy.close());
  for (const raw of ['example.com', 'example.com:0', 'example.com:70000', 'user@example.com:443', 'example.com:443/x', '[example.com]:443']) {
    const r = await connectVia(proxy.port, raw);
    t.equal(r.status, 400, raw);
    t.equal(r.headers['x-credproxy-error'], 'bad_request', raw);
    const body = JSON.parse(r.body.toString()) as { error: { code: string; message: string } };
    t.equal(body.error.code, 'bad_request', raw);
    t.match(body.error.message, /CONNECT target/, raw);
  }
});
