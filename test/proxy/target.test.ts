import type { IncomingMessage } from 'node:http';
import t from 'tap';
import { isProxyRequest, parseTarget, plainTarget, tunnelTarget, type Target, type TunnelContext } from '../../src/proxy/target.js';

const href = (t: Target) => `${t.secure ? 'https' : 'http'}://${t.host}${t.pathname}${t.search}`;

/** What parseTarget must give for `raw`, from WHATWG URL parsing alone (the way it always worked), or the error. */
function viaUrl(raw: string): Target | string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'invalid';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'scheme';
  if (url.username !== '' || url.password !== '' || /^[a-z]+:\/\/[^/?#]*@/i.test(raw)) return 'userinfo';
  let hostname = url.hostname;
  if (hostname.startsWith('[')) hostname = hostname.slice(1, -1);
  if (hostname.endsWith('.')) hostname = hostname.slice(0, -1);
  if (hostname === '') return 'nohost';
  return { host: url.host, hostname, port: url.port === '' ? undefined : Number(url.port), pathname: url.pathname, search: url.search, secure: url.protocol === 'https:' };
}

function parsed(raw: string): Target | string {
  try {
    return parseTarget(raw);
  } catch (err) {
    const m = (err as Error).message;
    return /not a valid/.test(m) ? 'invalid' : /scheme/.test(m) ? 'scheme' : /user information/.test(m) ? 'userinfo' : /no host/.test(m) ? 'nohost' : m;
  }
}

t.test('parseTarget: host lower-cased, trailing dot and IPv6 brackets dropped, default port undefined', async (t) => {
  t.match(parseTarget('http://API.Example.com./v1?q=1'), { hostname: 'api.example.com', port: undefined, secure: false });
  t.match(parseTarget('https://[::1]:8443/x'), { hostname: '::1', port: 8443, secure: true });
  t.equal(parseTarget('https://example.com:443/').port, undefined, 'the scheme default is no port');
  t.equal(parseTarget('http://example.com/a%2Fb?x=1').search, '?x=1');
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
  t.equal(href(wss), 'https://example.com:9443/socket?x=1');
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
  t.equal(href(tunnelTarget(tunnel, '/v1/me?x=1')), 'https://api.example.com/v1/me?x=1');
  t.equal(href(tunnelTarget(tunnel, 'https://API.example.com/v2')), 'https://api.example.com/v2');
  t.throws(() => tunnelTarget(tunnel, 'https://other.example.com/v2'), { code: 'bad_request', message: /names another target/ });
  t.throws(() => tunnelTarget(tunnel, 'https://api.example.com:8443/'), { message: /names another target/ }, 'same host, other port');
  t.throws(() => tunnelTarget(tunnel, 'http://api.example.com/'), { message: /names another target/ }, 'port 80 is another target');
  const v6: TunnelContext = { hostname: '::1', port: 8080, secure: false, proxyAuthorization: undefined };
  t.match(tunnelTarget(v6, '/x'), { hostname: '::1', port: 8080, secure: false });
});

t.test('parseTarget reads plain targets without URL, and gives exactly what URL parsing gives for every target', async (t) => {
  const hosts = ['example.com', 'api.example.com', 'API.Example.com', 'example.com.', '127.0.0.1', '10.0.0.255', '127.1', '0x7f.0.0.1', '010.0.0.1', '1.2.3.4.5',
    '256.0.0.1', 'a-b.example', '-a.example', 'a..b', 'xn--nxasmq6b.example', 'xn--zz.example', '[::1]', '1abc', 'ex.1abc', 'ex.0x1f', 'user@example.com', ':@example.com', ''];
  const ports = ['', ':80', ':443', ':8080', ':080', ':0', ':65535', ':65536', ':', ':99999'];
  const paths = ['', '/', '/v1/me', '/a/./b', '/a/../b', '/a/%2e%2E/b', '/.hidden', '/a.b/c.', '/a%2Fb', '/%zz', '/a b', '/a\\b', '/é', '/a#frag', "/it's", '/a|b', '/{x}', '/a^b', '/`'];
  const queries = ['', '?', '?x=1', '?x=1&y=a%20b', "?q='s'", '?a?b', '?x=<y>', '?x="y"', '?é', '?a#b', '?a b', '?{}', '?|^`'];
  const raws: string[] = ['HTTP://example.com/', 'ftp://example.com/', 'Https://example.com/x'];
  for (const scheme of ['http://', 'https://', 'ws://'])
    for (const host of hosts) for (const port of ports) for (const path of paths) for (const query of queries) raws.push(scheme + host + port + path + query);
  // every printable ASCII character, and a few others, in each part
  for (let c = 0; c < 160; c++) {
    const ch = String.fromCharCode(c);
    raws.push(`http://ex${ch}ample.com/p`, `http://example.com/p${ch}q`, `http://example.com/p/${ch}`, `http://example.com/p?q${ch}r`, `http://example.com:8${ch}/`, `http://1.2.3${ch}/`);
  }
  let fast = 0;
  let mismatched = 0;
  for (const raw of raws) {
    const want = viaUrl(raw);
    const got = parsed(raw);
    if (JSON.stringify(got) !== JSON.stringify(want)) {
      mismatched++;
      t.same(got, want, raw);
    }
    if (plainTarget(raw) !== undefined) fast++;
  }
  t.equal(mismatched, 0, `${raws.length} targets, parsed the same as URL parsing`);
  t.comment(`${fast} of them took the plain path`);
  for (const common of ['http://127.0.0.1:8080/v1/me?x=1', 'http://10.0.0.255/', 'https://example.com:443/x?', 'http://a-b.example:65535/it\'s?q=a?b', 'https://api.github.com/user/repos?per_page=100&page=2', 'http://api.example.com/a%20b/c:d@e']) {
    t.ok(plainTarget(common), `${common}: no URL parsing`);
  }
});
