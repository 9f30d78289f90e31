import type { IncomingMessage } from 'node:http';
import t from 'tap';
import { isProxyRequest, parseTarget, tunnelTarget, type TunnelContext } from '../../src/proxy/target.js';

t.test('parseTarget: host lower-cased, trailing dot and IPv6 brackets dropped, default port undefined', async (t) => {
  t.match(parseTarget('http://API.Example.com./v1?q=1'), { hostname: 'api.example.com', port: undefined, secure: false });
  t.match(parseTarget('https://[::1]:8443/x'), { hostname: '::1', port: 8443, secure: true });
  t.equal(parseTarget('https://example.com:443/').port, undefined, 'the scheme default is no port');
  t.equal(parseTarget('http://example.com/a%2Fb?x=1').url.search, '?x=1');
});

t.test('parseTarget refuses what could send a credential somewhere unexpected', async (t) => {
  t.throws(() => parseTarget('/relative'), { code: 'bad_request', message: /not a valid absolute URL/ });
  t.throws(() => parseTarget('ftp://example.com/'), { code: 'bad_request', message: 'the scheme ftp is not proxied; use http or https' });
  t.throws(() => parseTarget('http://evil.test@example.com/'), { code: 'bad_request', message: /user information/ });
  t.throws(() => parseTarget('http://user:pw@example.com/'), { message: /user information/ });
  t.throws(() => parseTarget('http://@example.com/'), { message: /user information/ }, 'even an empty user part');
  t.throws(() => parseTarget('ws://example.com/'), { message: /scheme ws is not proxied/ }, 'ws only for upgrades');
});

t.test('parseTarget for upgrades: ws and wss travel as http and https', async (t) => {
  t.match(parseTarget('ws://example.com/socket', { websocket: true }), { secure: false, hostname: 'example.com' });
  const wss = parseTarget('wss://example.com:9443/socket?x=1', { websocket: true });
  t.equal(wss.url.href, 'https://example.com:9443/socket?x=1');
  t.equal(wss.secure, true);
});

t.test('isProxyRequest: absolute form is proxy traffic; origin form and * are for credproxy', async (t) => {
  const req = (url: string | undefined) => ({ url }) as IncomingMessage;
  t.ok(isProxyRequest(req('http://example.com/')));
  t.notOk(isProxyRequest(req('/api/entities')));
  t.notOk(isProxyRequest(req('*')));
});

t.test('tunnelTarget: the tunnel decides the host; an inner absolute URL must name the same one', async (t) => {
  const tunnel: TunnelContext = { hostname: 'api.example.com', port: 443, secure: true, proxyAuthorization: undefined };
  t.equal(tunnelTarget(tunnel, '/v1/me?x=1').url.href, 'https://api.example.com/v1/me?x=1');
  t.equal(tunnelTarget(tunnel, 'https://API.example.com/v2').url.href, 'https://api.example.com/v2');
  t.throws(() => tunnelTarget(tunnel, 'https://other.example.com/v2'), { code: 'bad_request', message: /names another target/ });
  t.throws(() => tunnelTarget(tunnel, 'https://api.example.com:8443/'), { message: /names another target/ }, 'same host, other port');
  t.throws(() => tunnelTarget(tunnel, 'http://api.example.com/'), { message: /names another target/ }, 'port 80 is another target');
  const v6: TunnelContext = { hostname: '::1', port: 8080, secure: false, proxyAuthorization: undefined };
  t.match(tunnelTarget(v6, '/x'), { hostname: '::1', port: 8080, secure: false });
});
