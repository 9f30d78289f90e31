import t from 'tap';
import { rawRequest } from '../support/raw.js';
import { assertRefused, securityFixture } from '../support/security.js';

/**
 * CONNECT bad inputs, with the catalogue's expected answers (docs/security.md): client
 * authentication, target parsing and the egress policy apply to tunnels as to requests.
 */

t.test('CONNECT bad inputs', async (t) => {
  const fx = await securityFixture(t, 'clients: [{ name: runner, key: "connect-key-0123456789" }]\n');
  const auth = 'Proxy-Authorization: Bearer connect-key-0123456789\r\n';
  const cases: Array<[name: string, bytes: string, status: number, code: string]> = [
    ['CONNECT with userinfo', `CONNECT user@example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n${auth}\r\n`, 400, 'bad_request'],
    ['CONNECT without a port', `CONNECT example.com HTTP/1.1\r\nHost: example.com\r\n${auth}\r\n`, 400, 'bad_request'],
    ['CONNECT with port 0', `CONNECT example.com:0 HTTP/1.1\r\nHost: example.com:0\r\n${auth}\r\n`, 400, 'bad_request'],
    ['CONNECT with a path', `CONNECT example.com:443/x HTTP/1.1\r\nHost: example.com\r\n${auth}\r\n`, 400, 'bad_request'],
    ['CONNECT without Proxy-Authorization when clients are configured', `CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n`, 407, 'proxy_auth_required'],
    ['CONNECT to loopback (egress)', `CONNECT 127.0.0.1:${fx.internal.port} HTTP/1.1\r\nHost: x\r\n${auth}\r\n`, 403, 'host_denied'],
    ['CONNECT to the metadata address in hex (egress)', `CONNECT 0xa9fea9fe:80 HTTP/1.1\r\nHost: x\r\n${auth}\r\n`, 403, 'host_denied'],
    ['CONNECT to [::ffff:127.0.0.1] (egress)', `CONNECT [::ffff:127.0.0.1]:${fx.internal.port} HTTP/1.1\r\nHost: x\r\n${auth}\r\n`, 403, 'host_denied'],
  ];
  for (const [name, bytes, status, code] of cases) {
    await t.test(name, async (t) => {
      const before = fx.seenCount();
      const r = await rawRequest(fx.proxy.port, bytes);
      assertRefused(t, fx, before, r, status, code);
    });
  }
});
