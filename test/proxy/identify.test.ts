import t from 'tap';
import { ENTITY_ID, proxyUser } from '../../src/proxy/identify.js';
import { errorOf, integrationYaml, rawRequest, setup, viaProxy } from '../support/servers.js';

const basic = (s: string) => `Basic ${Buffer.from(s).toString('base64')}`;

t.test('entity ids: missing → entity_required, malformed or repeated → bad_request, from Proxy-Authorization', async (t) => {
  const { up, proxy } = await setup(t, { integrations: (up) => ({ svc: integrationYaml([`127.0.0.1:${up.port}`], '{ type: bearer }') }) });
  await proxy.connect('alice@example.com', 'svc', { credentials: { token: 'tok-a' } });
  const target = `${up.origin}/x`;

  const missing = errorOf(await viaProxy(proxy.port, target));
  t.same([missing.status, missing.code, missing.header], [400, 'entity_required', 'entity_required']);
  t.match(missing.message, /X-Entity-Id/);

  for (const bad of ['', '-alice', '.x', 'a b', 'a/b', 'a'.repeat(257), 'ä', 'a,b', 'a;b']) {
    const e = errorOf(await viaProxy(proxy.port, target, { headers: { 'X-Entity-Id': bad } }));
    t.same([e.status, e.code], [400, 'bad_request'], `entity id ${JSON.stringify(bad.length > 20 ? `${bad.slice(0, 10)}…` : bad)} is refused`);
  }
  for (const good of ['a', 'A1', '0', 'alice@example.com', 'u:1+x_y.z-w', 'a'.repeat(256)]) t.ok(ENTITY_ID.test(good), `${good.slice(0, 20)} is an entity id`);

  const twice = errorOf(await viaProxy(proxy.port, target, { headers: { 'X-Entity-Id': ['alice@example.com', 'alice@example.com'] } }));
  t.same([twice.status, twice.code], [400, 'bad_request'], 'the header twice, even with one value');
  t.match(twice.message, /more than once/);

  const viaUser = await viaProxy(proxy.port, target, { headers: { 'Proxy-Authorization': basic('alice%40example.com:key') } });
  t.equal(viaUser.status, 200, 'the Basic proxy user name names the entity (percent-decoded, as curl sends it)');
  t.equal(up.seen.at(-1)!.headers.authorization, 'Bearer tok-a');
  t.notOk(up.seen.at(-1)!.headers['proxy-authorization']);

  const headerWins = errorOf(await viaProxy(proxy.port, target, { headers: { 'X-Entity-Id': 'bob', 'Proxy-Authorization': basic('alice@example.com:key') } }));
  t.equal(headerWins.code, 'connection_missing', 'the header wins over the proxy user');
  t.match(headerWins.message, /"bob"/);

  const badUser = errorOf(await viaProxy(proxy.port, target, { headers: { 'Proxy-Authorization': basic('-bad:key') } }));
  t.same([badUser.status, badUser.code], [400, 'bad_request']);
  const bearerProxy = errorOf(await viaProxy(proxy.port, target, { headers: { 'Proxy-Authorization': 'Bearer xyz' } }));
  t.equal(bearerProxy.code, 'entity_required', 'only Basic carries a user name');

  const hosts = await rawRequest(proxy.port, `GET ${target} HTTP/1.1\r\nHost: a\r\nHost: b\r\nX-Entity-Id: alice@example.com\r\nConnection: close\r\n\r\n`);
  t.match(hosts, /^HTTP\/1\.1 400/);
});

t.test('proxyUser', async (t) => {
  t.equal(proxyUser(undefined), undefined);
  t.equal(proxyUser('Digest x'), undefined);
  t.equal(proxyUser(basic('nouser')), 'nouser', 'no colon: the whole value is the user');
  t.equal(proxyUser(basic(':pw')), undefined);
  t.equal(proxyUser(basic('%zz:pw')), '%zz', 'a malformed escape is taken as written');
});
