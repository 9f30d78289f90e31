import t, { type Test } from 'tap';
import { request, ProxyAgent } from 'undici';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { issueToken } from '../../src/tokens/entity-tokens.js';
import { makeTestCa } from '../support/certs.js';
import { configDir, errorOf, integrationYaml, LOOPBACK_EGRESS, setup, startProxy, startUpstream, viaProxy, type TestProxy, type Upstream } from '../support/servers.js';
import { connectVia, tlsOver } from '../support/tunnel.js';

const basic = (s: string) => `Basic ${Buffer.from(s).toString('base64')}`;

async function tokenFor(proxy: TestProxy, entity: string, body: unknown = {}): Promise<{ id: string; token: string }> {
  const r = await proxy.admin('POST', `/api/entities/${entity}/tokens`, body);
  if (r.status !== 200) throw new Error(`token: ${r.status}`);
  return (await r.json()) as { id: string; token: string };
}

/** Nothing the upstream ever saw carries a cpx_ token. */
function neverSawToken(t: Test, up: Upstream): void {
  const all = JSON.stringify(up.seen.map((s) => [s.url, s.rawHeaders, s.body.toString('utf8')]));
  t.notMatch(all, /cpx_/, 'no cpx_ token reached the upstream');
}

async function fixture(t: Test, settings = '') {
  const other = await startUpstream();
  t.teardown(() => other.close());
  const s = await setup(t, {
    settings: `store: memory\n${LOOPBACK_EGRESS}${settings}`,
    integrations: (up) => ({
      keyed: integrationYaml([`127.0.0.1:${up.port}`], '{ type: api_key, fields: [api_key] }', 'paths: ["/keyed"]\ninject: { headers: { x-api-key: "{{api_key}}" } }\n'),
      bearer: integrationYaml([`127.0.0.1:${up.port}`], '{ type: bearer }', 'paths: ["/bearer"]\n'),
      query: integrationYaml([`127.0.0.1:${up.port}`], '{ type: api_key, fields: [api_key] }', 'paths: ["/query"]\ninject: { query: { key: "{{api_key}}" } }\n'),
    }),
  });
  for (const e of ['alice', 'bob']) {
    await s.proxy.connect(e, 'keyed', { credentials: { api_key: `${e}-real-key` } });
    await s.proxy.connect(e, 'bearer', { credentials: { token: `${e}-real-bearer` } });
    await s.proxy.connect(e, 'query', { credentials: { api_key: `${e}-real-query` } });
  }
  return { ...s, other };
}

t.test('a cpx_ token where the SDK puts its key names the entity and is replaced by the real credential', async (t) => {
  const { up, proxy } = await fixture(t);
  const { token } = await tokenFor(proxy, 'alice');
  const base = `http://127.0.0.1:${up.port}`;

  t.equal((await viaProxy(proxy.port, `${base}/keyed/v1`, { headers: { 'x-api-key': token } })).status, 200);
  t.equal(up.seen.at(-1)!.headers['x-api-key'], 'alice-real-key');

  t.equal((await viaProxy(proxy.port, `${base}/bearer/v1`, { headers: { authorization: `Bearer ${token}` } })).status, 200);
  t.equal(up.seen.at(-1)!.headers.authorization, 'Bearer alice-real-bearer');

  // Authorization is accepted for any integration (SDKs default to it); it is removed, not forwarded.
  t.equal((await viaProxy(proxy.port, `${base}/keyed/v2`, { headers: { authorization: `Bearer ${token}` } })).status, 200);
  t.equal(up.seen.at(-1)!.headers['x-api-key'], 'alice-real-key');
  t.notOk(up.seen.at(-1)!.headers.authorization);

  t.equal((await viaProxy(proxy.port, `${base}/query/v1?a=1&key=${token}&b=2`)).status, 200);
  t.equal(up.seen.at(-1)!.url, '/query/v1?a=1&b=2&key=alice-real-query');

  for (const pa of [basic(`x:${token}`), `Bearer ${token}`]) {
    const r = await viaProxy(proxy.port, `${base}/bearer/pa`, { headers: { 'proxy-authorization': pa } });
    t.equal(r.status, 200, `in Proxy-Authorization (${pa.split(' ')[0]})`);
    t.equal(up.seen.at(-1)!.headers.authorization, 'Bearer alice-real-bearer');
  }

  // The same entity named in the header too: fine; another entity: refused.
  t.equal((await viaProxy(proxy.port, `${base}/keyed/v3`, { headers: { 'x-api-key': token, 'x-entity-id': 'alice' } })).status, 200);
  const before = up.seen.length;
  const other = errorOf(await viaProxy(proxy.port, `${base}/keyed/v3`, { headers: { 'x-api-key': token, 'x-entity-id': 'bob' } }));
  t.same([other.status, other.code], [403, 'entity_denied']);
  t.equal(up.seen.length, before, 'not forwarded');
  neverSawToken(t, up);
  t.notMatch(proxy.logs.text, token.slice(4), 'never logged');
  t.match(proxy.logs.text, /"entity":"alice","integration":"keyed"/);
});

t.test('expired, revoked, forged, out of scope, misplaced or to passthrough: 403 entity_denied, nothing forwarded', async (t) => {
  const { up, other, proxy } = await fixture(t);
  const base = `http://127.0.0.1:${up.port}`;
  const scoped = await tokenFor(proxy, 'alice', { integrations: ['keyed'] });
  const revoked = await tokenFor(proxy, 'alice');
  t.equal((await proxy.admin('DELETE', `/api/tokens/${revoked.id}`)).status, 204);
  // Issued two hours ago for one hour: its record is still in the store, past its expiry.
  const expired = await issueToken(proxy.runtime.store.kv, 'alice', { ttlSeconds: 3600 }, Date.now() - 7_200_000);
  const forged = `cpx_${Buffer.alloc(32, 1).toString('base64url')}`;
  const good = await tokenFor(proxy, 'alice');

  const cases: Array<[string, string, Record<string, string>, RegExp]> = [
    ['expired', `${base}/keyed/x`, { 'x-api-key': expired.token }, /not valid/],
    ['revoked', `${base}/keyed/x`, { 'x-api-key': revoked.token }, /not valid/],
    ['forged', `${base}/keyed/x`, { 'x-api-key': forged }, /not valid/],
    ['forged, short', `${base}/keyed/x`, { 'x-api-key': 'cpx_abcdefgh' }, /not valid/],
    ['forged in Proxy-Authorization', `${base}/keyed/x`, { 'proxy-authorization': basic(`x:${forged}`) }, /not valid/],
    ['revoked in Proxy-Authorization, passthrough', `${other.origin}/x`, { 'proxy-authorization': `Bearer ${revoked.token}` }, /not valid/],
    ['out of scope', `${base}/bearer/x`, { authorization: `Bearer ${scoped.token}` }, /not valid for integration "bearer"/],
    ['out of scope via Proxy-Authorization', `${base}/bearer/x`, { 'proxy-authorization': basic(`x:${scoped.token}`) }, /not valid for integration "bearer"/],
    ['in a header the integration does not replace', `${base}/keyed/x`, { 'x-other': good.token }, /not in x-other/i],
    ['inside Basic in another header', `${base}/keyed/x`, { 'x-other': basic(`u:${good.token}`) }, /not in x-other/i],
    ['in a query parameter the integration does not replace', `${base}/query/x?other=${good.token}`, {}, /query parameter/],
    ['in the path', `${base}/keyed/${good.token}`, {}, /path/],
    ['spelled with an escape in a query parameter', `${base}/query/x?other=%63${good.token.slice(1)}`, {}, /query parameter/],
    ['spelled with an escape in the path', `${base}/keyed/%63${good.token.slice(1)}`, {}, /path/],
    ['to a passthrough host in Authorization', `${other.origin}/x`, { authorization: `Bearer ${good.token}` }, /no integration owns/],
    ['to a passthrough host in a query', `${other.origin}/x?k=${good.token}`, {}, /no integration owns/],
    ['two different tokens', `${base}/keyed/x`, { 'x-api-key': good.token, authorization: `Bearer ${scoped.token}` }, /several/],
  ];
  for (const [why, target, headers, message] of cases) {
    const e = errorOf(await viaProxy(proxy.port, target, { headers }));
    t.same([e.status, e.code, e.header], [403, 'entity_denied', 'entity_denied'], why);
    t.match(e.message, message, why);
  }
  t.equal(up.seen.length, 0, 'the integration upstream got nothing');
  t.equal(other.seen.length, 0, 'the passthrough upstream got nothing');

  // Passthrough with the token as the proxy password is fine: Proxy-Authorization never travels.
  t.equal((await viaProxy(proxy.port, `${other.origin}/ok`, { headers: { 'proxy-authorization': basic(`x:${good.token}`) } })).status, 200);
  t.notOk(other.seen.at(-1)!.headers['proxy-authorization']);
  neverSawToken(t, other);
});

t.test('with clients: a client key plus a token in the replaced header, or the token alone as the proxy password', async (t) => {
  const { up, proxy } = await fixture(t, 'clients:\n  - { name: runner, key: runner-key-0123456789, entities: ["a*"] }\n');
  const base = `http://127.0.0.1:${up.port}`;
  const alice = await tokenFor(proxy, 'alice');
  const bob = await tokenFor(proxy, 'bob');

  const noKey = errorOf(await viaProxy(proxy.port, `${base}/keyed/x`, { headers: { 'x-api-key': alice.token } }));
  t.equal(noKey.code, 'proxy_auth_required', 'a token in the replaced header does not stand in for the client key');
  const r = await viaProxy(proxy.port, `${base}/keyed/x`, { headers: { 'x-api-key': alice.token, 'proxy-authorization': basic('runner:runner-key-0123456789') } });
  t.equal(r.status, 200);
  t.equal(up.seen.at(-1)!.headers['x-api-key'], 'alice-real-key');
  const notMine = errorOf(await viaProxy(proxy.port, `${base}/keyed/x`, { headers: { 'x-api-key': bob.token, 'proxy-authorization': basic('runner:runner-key-0123456789') } }));
  t.same([notMine.code, notMine.message.includes('may not act for entity "bob"')], ['entity_denied', true], 'the client may still act only for its entities');

  const alone = await viaProxy(proxy.port, `${base}/keyed/x`, { headers: { 'proxy-authorization': basic(`x:${bob.token}`) } });
  t.equal(alone.status, 200, 'an admin-issued token is its own proxy credential, for its one entity');
  t.equal(up.seen.at(-1)!.headers['x-api-key'], 'bob-real-key');
  t.match(proxy.logs.text, new RegExp(`"client":"token:${bob.id}"`));
  neverSawToken(t, up);
});

t.test('inside an intercepted CONNECT tunnel: the token as the proxy password or in the replaced header', async (t) => {
  const ca = makeTestCa();
  const cert = ca.issue(['127.0.0.1']);
  const up = await startUpstream(undefined, { tls: cert });
  t.teardown(() => up.close());
  const dir = configDir('', { svc: `hosts: ["127.0.0.1:${up.port}"]\nauth: { type: bearer }\n` });
  writeFileSync(join(dir, 'credproxy.yaml'), `store: memory\ntls:\n  ca_dir: ${join(dir, 'ca')}\n  upstream_ca: ${ca.write(dir)}\n`);
  const proxy = await startProxy(dir);
  t.teardown(() => proxy.close());
  await proxy.connect('carol', 'svc', { credentials: { token: 'carol-real' } });
  const { token, id } = await tokenFor(proxy, 'carol');
  const requestTls = { ca: proxy.runtime.tls.ca!.certPem };

  const viaPassword = new ProxyAgent({ uri: proxy.url.replace('http://', `http://x:${token}@`), requestTls });
  t.teardown(() => viaPassword.close());
  const r1 = await request(`https://127.0.0.1:${up.port}/a`, { dispatcher: viaPassword });
  t.equal(r1.statusCode, 200);
  await r1.body.text();
  t.equal(up.seen.at(-1)!.headers.authorization, 'Bearer carol-real');

  const plain = new ProxyAgent({ uri: proxy.url, requestTls });
  t.teardown(() => plain.close());
  const r2 = await request(`https://127.0.0.1:${up.port}/b`, { dispatcher: plain, headers: { authorization: `Bearer ${token}` } });
  t.equal(r2.statusCode, 200);
  await r2.body.text();
  t.equal(up.seen.at(-1)!.headers.authorization, 'Bearer carol-real');

  // Revoked while a tunnel is open: the next request inside it is refused.
  t.equal((await proxy.admin('DELETE', `/api/tokens/${id}`)).status, 204);
  const r3 = await request(`https://127.0.0.1:${up.port}/c`, { dispatcher: viaPassword });
  t.equal(r3.statusCode, 403);
  t.equal(r3.headers['x-credproxy-error'], 'entity_denied');
  await r3.body.text();
  const connect = await connectVia(proxy.port, `127.0.0.1:${up.port}`, { 'proxy-authorization': basic(`x:${token}`) });
  t.equal(connect.status, 403, 'a CONNECT with a revoked token is refused before the tunnel opens');
  t.equal(up.seen.length, 2);
  t.notMatch(JSON.stringify(up.seen.map((s) => s.rawHeaders)), /cpx_/);
});

t.test("a token client's tunnels are all inspected: a token sent inside TLS to a passthrough host is refused", async (t) => {
  const ca = makeTestCa();
  const up = await startUpstream(undefined, { tls: ca.issue(['127.0.0.1']) });
  const elsewhere = await startUpstream(undefined, { tls: ca.issue(['127.0.0.1']) });
  t.teardown(() => up.close());
  t.teardown(() => elsewhere.close());
  const dir = configDir('', { svc: `hosts: ["127.0.0.1:${up.port}"]\nauth: { type: bearer }\n` });
  writeFileSync(join(dir, 'credproxy.yaml'), `store: memory\n${LOOPBACK_EGRESS}tls:\n  ca_dir: ${join(dir, 'ca')}\n  upstream_ca: ${ca.write(dir)}\n`);
  const proxy = await startProxy(dir);
  t.teardown(() => proxy.close());
  await proxy.connect('dave', 'svc', { credentials: { token: 'dave-real' } });
  const { token } = await tokenFor(proxy, 'dave');
  const requestTls = { ca: proxy.runtime.tls.ca!.certPem };
  const agent = new ProxyAgent({ uri: proxy.url.replace('http://', `http://dave:${token}@`), requestTls });
  t.teardown(() => agent.close());
  const issuedBefore = proxy.runtime.tls.leaves!.issued;

  const plain = await request(`https://127.0.0.1:${elsewhere.port}/fine?q=1`, { dispatcher: agent, headers: { 'x-custom': 'kept' } });
  t.equal(plain.statusCode, 200, 'a passthrough request inside the terminated tunnel reaches its host');
  await plain.body.text();
  t.equal(elsewhere.seen.at(-1)!.headers['x-custom'], 'kept');
  t.notOk(elsewhere.seen.at(-1)!.headers['proxy-authorization']);
  t.ok(proxy.runtime.tls.leaves!.issued > issuedBefore, 'credproxy answered the handshake itself');

  for (const headers of [{ authorization: `Bearer ${token}` }, { 'x-api-key': token }, { cookie: `s=${token}` }]) {
    const r = await request(`https://127.0.0.1:${elsewhere.port}/leak`, { dispatcher: agent, headers });
    t.equal(r.statusCode, 403, Object.keys(headers)[0]!);
    t.equal(r.headers['x-credproxy-error'], 'entity_denied');
    await r.body.text();
  }
  const inQuery = await request(`https://127.0.0.1:${elsewhere.port}/leak?k=${token}`, { dispatcher: agent });
  t.equal(inQuery.statusCode, 403);
  await inQuery.body.text();
  t.same(elsewhere.seen.map((s) => s.url), ['/fine?q=1'], 'nothing else reached the passthrough host');

  // A client without a token keeps its opaque tunnel: credproxy issues no certificate for it.
  const opaque = await connectVia(proxy.port, `127.0.0.1:${elsewhere.port}`);
  t.equal(opaque.status, 200);
  const issued = proxy.runtime.tls.leaves!.issued;
  const secure = await tlsOver(opaque.socket, { ca: ca.certPem });
  t.equal(proxy.runtime.tls.leaves!.issued, issued, "the client talked TLS with the host itself, credproxy's CA was not involved");
  secure.destroy();
  neverSawToken(t, elsewhere);
  neverSawToken(t, up);
});

t.test('with tls.intercept off a token client gets no tunnel at all: credproxy could not look inside', async (t) => {
  const up = await startUpstream();
  t.teardown(() => up.close());
  const dir = configDir(`store: memory\n${LOOPBACK_EGRESS}tls: { intercept: false }\n`, { svc: `hosts: ["127.0.0.1:${up.port}"]\nauth: { type: bearer }\n` });
  const proxy = await startProxy(dir);
  t.teardown(() => proxy.close());
  const { token } = await tokenFor(proxy, 'erin');
  for (const target of [`127.0.0.1:${up.port}`, `localhost:${up.port}`]) {
    const r = await connectVia(proxy.port, target, { 'proxy-authorization': basic(`erin:${token}`) });
    t.equal(r.status, 403, target);
    t.equal(r.headers['x-credproxy-error'], 'entity_denied');
    t.match(r.body.toString(), /tls\.intercept is off/);
  }
  const without = await connectVia(proxy.port, `127.0.0.1:${up.port}`);
  t.equal(without.status, 200, 'a client without a token still gets its tunnel');
  without.socket.destroy();
  t.equal(up.seen.length, 0);
});
