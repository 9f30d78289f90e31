import t from 'tap';
import { loadConfig } from '../support/config.js';
import { pathMatches, RoutingTable } from '../../src/proxy/match.js';
import { configDir, errorOf, integrationYaml, LOOPBACK_EGRESS, setup, startProxy, viaProxy } from '../support/servers.js';

/**
 * Which requests get a credential. Real upstreams listen on 127.0.0.1; `localhost` names the
 * same server, so an integration that owns `localhost:PORT` shows exactly what a look-alike
 * target (`127.0.0.1:PORT`) receives. Names that resolve nowhere are checked with
 * `passthrough: deny`: 403 host_denied means no integration matched, 400 entity_required
 * (no entity given) means one did. Nothing leaves the machine either way.
 */

t.test('the credential goes only to the request-line target; Host headers and look-alikes get none', async (t) => {
  const { up, proxy } = await setup(t, { integrations: (up) => ({ local: integrationYaml([`localhost:${up.port}`], '{ type: bearer }') }) });
  await proxy.connect('alice', 'local', { credentials: { token: 'tok-local' } });
  const as = (target: string, headers: Record<string, string> = {}) => viaProxy(proxy.port, target, { headers: { 'X-Entity-Id': 'alice', ...headers } });

  t.equal((await as(`http://localhost:${up.port}/a`)).status, 200);
  t.equal(up.seen.at(-1)!.headers.authorization, 'Bearer tok-local');

  t.equal((await as(`http://LocalHost.:${up.port}/b`)).status, 200, 'case-insensitive, trailing dot ignored');
  t.equal(up.seen.at(-1)!.headers.authorization, 'Bearer tok-local');
  t.equal(up.seen.at(-1)!.headers.host, `localhost:${up.port}`, 'the normalised host is what upstream sees');

  t.equal((await as(`http://127.0.0.1:${up.port}/c`)).status, 200, 'same server, other name: passthrough');
  t.notOk(up.seen.at(-1)!.headers.authorization, 'no credential for a host the integration does not own');

  t.equal((await as(`http://127.0.0.1:${up.port}/d`, { Host: `localhost:${up.port}` })).status, 200);
  t.notOk(up.seen.at(-1)!.headers.authorization, 'a Host header naming the integration does not attract the credential');
  t.equal(up.seen.at(-1)!.headers.host, `127.0.0.1:${up.port}`, 'Host is rewritten to the request-line target');

  t.equal((await as(`http://localhost:${up.port}/e`, { Host: 'evil.test' })).status, 200);
  t.equal(up.seen.at(-1)!.headers.host, `localhost:${up.port}`, 'the credential went to the target, with its own Host');

  const before = up.seen.length;
  for (const target of [`http://user@localhost:${up.port}/`, `http://localhost:${up.port}@127.0.0.1:${up.port}/`, `http://u:p@localhost:${up.port}/`, `http://x\\@localhost:${up.port}/`]) {
    const e = errorOf(await as(target));
    t.equal(e.status, 400, `${target}: 400`);
    t.equal(e.code, 'bad_request');
  }
  t.equal(up.seen.length, before, 'userinfo targets are refused, nothing forwarded');

  const other = await as(`http://localhost:${up.port + 1 === 65536 ? 1 : up.port + 1}/`);
  t.not(other.status, 200);
  t.not(errorOf(other).code, 'connection_missing', 'another port of the same host is another origin');
});

t.test('look-alike names never match; exact, wildcard, default port, IDN and paths do', async (t) => {
  const dir = configDir('store: memory\npassthrough: deny\n', {
    api: 'hosts: [api.example.com]\nupstream: http\nauth: { type: bearer }\n',
    wild: 'hosts: ["*.wild.example"]\nupstream: http\nauth: { type: bearer }\n',
    secure: 'hosts: ["secure.example", "alt.example:8443"]\nauth: { type: bearer }\n',
    idn: 'hosts: ["Bücher.example"]\nupstream: http\nauth: { type: bearer }\n',
    paths: 'hosts: [paths.example]\nupstream: http\npaths: ["/v1/", "/admin/api"]\nauth: { type: bearer }\n',
    paths2: 'hosts: [paths.example]\nupstream: http\npaths: ["/admin"]\nauth: { type: bearer }\n',
    v6: 'hosts: ["[::1]:8080", "[2001:DB8::1]"]\nupstream: http\nauth: { type: bearer }\n',
  });
  const proxy = await startProxy(dir);
  t.teardown(() => proxy.close());
  const owner = async (target: string) => {
    const e = errorOf(await viaProxy(proxy.port, target));
    if (e.code === 'entity_required') return /integration "([^"]+)"/.exec(e.message)?.[1];
    // A dot segment on an integration's host is refused before matching (dot-segments.ts).
    if (e.code === 'bad_request' && /"\." or "\.\." segment/.test(e.message)) return 'dot segment refused';
    t.equal(e.code, 'host_denied', `${target}: either matched or denied`);
    return undefined;
  };
  const cases: Array<[string, string | undefined]> = [
    ['http://api.example.com/x', 'api'],
    ['http://API.Example.COM./x', 'api'],
    ['http://api.example.com:80/x', 'api'],
    ['http://api.example.com:8080/x', undefined],
    ['http://api.example.com.evil.test/x', undefined],
    ['http://evilapi.example.com/x', undefined],
    ['http://example.com/x', undefined],
    ['http://a.api.example.com/x', undefined],
    ['http://a.wild.example/', 'wild'],
    ['http://a.b.WILD.example/', 'wild'],
    ['http://wild.example/', undefined],
    ['http://evilwild.example/', undefined],
    ['http://a.wild.example.evil.test/', undefined],
    ['http://a.wild.example:81/', undefined],
    ['http://secure.example/', 'secure'],
    ['https://secure.example/', 'secure'],
    ['https://secure.example:443/', 'secure'],
    ['http://secure.example:443/', 'secure'],
    ['http://secure.example:80/', 'secure'],
    ['http://secure.example:8443/', undefined],
    ['http://alt.example:8443/', 'secure'],
    ['http://alt.example/', undefined],
    ['http://xn--bcher-kva.example/', 'idn'],
    ['http://B%C3%BCcher.example/', 'idn'],
    ['http://paths.example/v1', 'paths'],
    ['http://paths.example/v1/', 'paths'],
    ['http://paths.example/v1/users?q=1', 'paths'],
    ['http://paths.example/v1x', undefined],
    ['http://paths.example/v1/../other', 'dot segment refused'],
    ['http://paths.example/V1/x', undefined],
    ['http://paths.example/admin', 'paths2'],
    ['http://paths.example/admin/api/x', 'paths'],
    ['http://paths.example/admin/apix', 'paths2'],
    ['http://paths.example/administrator', undefined],
    ['http://paths.example/', undefined],
    ['http://[::1]:8080/', 'v6'],
    ['http://[0:0::1]:8080/', 'v6'],
    ['http://[::1]:8081/', undefined],
    ['http://[2001:db8::1]/', 'v6'],
    ['http://[2001:db8::1]:80/', 'v6'],
  ];
  for (const [target, want] of cases) t.equal(await owner(target), want, `${target} → ${want ?? 'no integration'}`);
});

t.test('passthrough allow: a look-alike is forwarded with no credential (and fails to resolve here)', async (t) => {
  const dir = configDir(`store: memory\n${LOOPBACK_EGRESS}`, { api: 'hosts: [api.example.com]\nupstream: http\nauth: { type: bearer }\n' });
  const proxy = await startProxy(dir);
  t.teardown(() => proxy.close());
  await proxy.connect('alice', 'api', { credentials: { token: 'tok-api' } });
  const r = await viaProxy(proxy.port, 'http://api.example.com.evil.test/', { headers: { 'X-Entity-Id': 'alice' } });
  const e = errorOf(r);
  t.equal(e.status, 502, 'passthrough: the look-alike went to DNS like any other host');
  t.equal(e.code, 'upstream_error');
  t.notMatch(r.body.toString(), /tok-api/);
  t.notMatch(proxy.logs.text, /tok-api/);
  t.match(proxy.logs.text, /"integration":"passthrough"/);

  const v6 = errorOf(await viaProxy(proxy.port, 'http://[::1]:1/'));
  t.same([v6.status, v6.code], [502, 'upstream_error'], 'an IPv6 literal target is forwarded to (and fails at) that address');
});

t.test('passthrough deny: 403 host_denied, with the header', async (t) => {
  const { up, proxy } = await setup(t, { settings: 'store: memory\npassthrough: deny\n' });
  const r = await viaProxy(proxy.port, `${up.origin}/`);
  const e = errorOf(r);
  t.equal(e.status, 403);
  t.equal(e.code, 'host_denied');
  t.equal(e.header, 'host_denied');
  t.equal(up.seen.length, 0);
});

t.test('RoutingTable and pathMatches', async (t) => {
  const config = loadConfig(configDir('store: memory\n', {
    a: 'hosts: [h.example]\npaths: [/]\nauth: { type: bearer }\n',
    b: 'hosts: [h.example]\npaths: [/v2]\nauth: { type: bearer }\n',
    w: 'hosts: ["*.h.example", "*.other.example:8443"]\nauth: { type: bearer }\n',
  }), { env: {} });
  const routes = new RoutingTable(config.integrations.values());
  t.equal(routes.match('h.example', undefined, '/v2/x')?.integration.name, 'b', 'longest prefix wins');
  t.equal(routes.match('h.example', undefined, '/v3')?.integration.name, 'a');
  t.equal(routes.match('x.h.example', undefined, '/')?.integration.name, 'w');
  t.equal(routes.match('x.other.example', 8443, '/')?.integration.name, 'w');
  t.equal(routes.match('x.other.example', undefined, '/'), undefined);
  t.equal(routes.match('h.example', 8080, '/'), undefined);
  t.equal(routes.match('h.example', 443, '/v2')?.integration.name, 'b', 'an explicit default port of the upstream scheme is the default');
  t.equal(routes.match('x.h.example', 443, '/')?.integration.name, 'w');
  t.equal(routes.match('h.example', 80, '/'), undefined, ':80 is not the default of an https upstream');
  t.ok(pathMatches('/v1', '/v1'));
  t.ok(pathMatches('/v1', '/v1/'));
  t.notOk(pathMatches('/v1', '/v1x'));
  t.ok(pathMatches('/', '/anything'));
  // An upstream that decodes %2F before resolving dot segments would serve another path.
  for (const escaping of ['/v1/..%2Fadmin', '/v1/..%2fadmin', '/v1/%2E%2E/admin', '/v1%2F..%2F..%2Fadmin', '/v1/..%5Cadmin', '/v1/x/..%2F..%2Fadmin']) {
    t.notOk(pathMatches('/v1', escaping), escaping);
  }
  // Encoded slashes that stay inside the prefix are fine (GitLab's group%2Fproject ids).
  for (const inside of ['/v1/projects/group%2Fproject', '/v1/a/..%2Fb', '/v1/%2E/x', '/v1/%41']) t.ok(pathMatches('/v1', inside), inside);
  t.ok(pathMatches('/v1', '/v1/..%2Fv1/x'), 'back under the prefix');
});

t.test('a path that escapes its prefix once an upstream decodes %2F gets no credential', async (t) => {
  const { up, proxy } = await setup(t, {
    settings: LOOPBACK_EGRESS,
    integrations: (up) => ({ api: integrationYaml([`127.0.0.1:${up.port}`], '{ type: bearer }', 'paths: ["/v1"]\n') }),
  });
  await proxy.connect('alice', 'api', { credentials: { token: 'tok-v1' } });
  const as = (path: string) => viaProxy(proxy.port, `http://127.0.0.1:${up.port}${path}`, { headers: { 'X-Entity-Id': 'alice' } });
  t.equal((await as('/v1/projects/group%2Fproject')).status, 200);
  t.equal(up.seen.at(-1)!.headers.authorization, 'Bearer tok-v1');
  t.equal(up.seen.at(-1)!.url, '/v1/projects/group%2Fproject', 'forwarded as sent');
  // Once passed through without the credential; now any dot segment on an integration's host
  // is refused outright (dot-segments.ts, test/proxy/dot-segments.test.ts).
  const seen = up.seen.length;
  const escaping = await as('/v1/..%2Fadmin');
  t.equal(escaping.status, 400, 'refused');
  t.equal(escaping.headers['x-credproxy-error'], 'bad_request');
  t.equal(up.seen.length, seen, 'nothing forwarded');
});
