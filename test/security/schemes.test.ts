import t from 'tap';
import { configDir, startProxy, startUpstream, viaProxy } from '../support/servers.js';

/**
 * Hostile inputs against each static scheme: credentials the client smuggles in the places
 * credproxy injects into, and stored values that would break the injected header.
 */
t.test('schemes: client copies are replaced, never duplicated; bad stored values are refused', async (t) => {
  const up = await startUpstream();
  t.teardown(() => up.close());
  const o = up.port;
  // One upstream, three integrations told apart by path prefix.
  const dir = configDir('store: memory\n', {
    basicauth: `hosts: ["127.0.0.1:${o}"]\npaths: ["/basic"]\nupstream: http\nauth: { type: basic }\n`,
    querykey: `hosts: ["127.0.0.1:${o}"]\npaths: ["/query"]\nupstream: http\nauth: { type: api_key }\ninject: { query: { key: "{{api_key}}" } }\n`,
    twokeys: `hosts: ["127.0.0.1:${o}"]\npaths: ["/two"]\nupstream: http\nauth: { type: api_key, fields: [a, { name: b, optional: true }] }\ninject: { headers: { X-Key: "{{a}}:{{b}}" } }\n`,
    oauth: `hosts: ["127.0.0.1:${o}"]\npaths: ["/oauth"]\nupstream: http\nauth: { type: oauth2, authorize_url: "https://idp.test/authorize", token_url: "https://idp.test/token", client_id: cid }\n`,
  });
  const proxy = await startProxy(dir);
  t.teardown(() => proxy.close());
  const put = async (integration: string, body: unknown) => {
    const r = await proxy.connect('alice', integration, body);
    return { status: r.status, code: r.headers.get('x-credproxy-error'), text: await r.text() };
  };

  await t.test('basic: a colon in the user name is refused (it would shift the password)', async (t) => {
    const r = await put('basicauth', { credentials: { username: 'ali:ce', password: 'pw' } });
    t.equal(r.status, 400);
    t.equal(r.code, 'bad_request');
  });
  await t.test('basic: CRLF in the password is refused', async (t) => {
    const r = await put('basicauth', { credentials: { username: 'alice', password: 'pw\r\nX-Evil: 1' } });
    t.equal(r.status, 400);
    t.notMatch(r.text, /X-Evil/);
  });
  await t.test('basic: injected, replacing the client Authorization', async (t) => {
    t.equal((await put('basicauth', { credentials: { username: 'alice', password: 'p:w' } })).status, 200);
    const r = await viaProxy(proxy.port, `${up.origin}/basic/x`, { headers: { 'X-Entity-Id': 'alice', Authorization: 'Basic Zm9vOmJhcg==' } });
    t.equal(r.status, 200);
    const seen = up.seen.at(-1)!;
    t.equal(seen.headers.authorization, `Basic ${Buffer.from('alice:p:w').toString('base64')}`);
    t.equal(seen.rawHeaders.filter((h) => h.toLowerCase() === 'authorization').length, 1);
  });

  await t.test('api_key in the query: client copies of the parameter (in any spelling) are removed', async (t) => {
    t.equal((await put('querykey', { credentials: { api_key: 'real key&x=1' } })).status, 200);
    const r = await viaProxy(proxy.port, `${up.origin}/query/x?a=1&key=attacker&%6Bey=encoded&k%65y=also&b=2`, { headers: { 'X-Entity-Id': 'alice' } });
    t.equal(r.status, 200);
    const url = new URL(up.seen.at(-1)!.url, 'http://x');
    t.same(url.searchParams.getAll('key'), ['real key&x=1'], 'exactly one key, the injected one, encoded whole');
    t.equal(url.searchParams.get('a'), '1');
    t.equal(url.searchParams.get('b'), '2');
    t.notOk(url.searchParams.has('x'), 'the stored value could not add a parameter');
  });

  await t.test('a template value the connection lacks is 424, never an empty credential upstream', async (t) => {
    t.equal((await put('twokeys', { credentials: { a: 'first-part' } })).status, 200);
    const before = up.seen.length;
    const r = await viaProxy(proxy.port, `${up.origin}/two/x`, { headers: { 'X-Entity-Id': 'alice' } });
    t.equal(r.status, 424);
    t.equal(r.headers['x-credproxy-error'], 'connection_missing');
    t.match(r.body.toString(), /lacks b/);
    t.equal(up.seen.length, before, 'nothing forwarded');
  });

  await t.test('a deleted connection is gone at once: 424, nothing forwarded', async (t) => {
    t.equal((await proxy.admin('DELETE', '/api/entities/alice/connections/twokeys')).status, 204);
    const before = up.seen.length;
    const r = await viaProxy(proxy.port, `${up.origin}/two/x`, { headers: { 'X-Entity-Id': 'alice' } });
    t.equal(r.status, 424);
    t.equal(r.headers['x-credproxy-error'], 'connection_missing');
    t.equal(up.seen.length, before);
  });

  await t.test('oauth2 token sets: bad shapes are refused', async (t) => {
    const bad = [
      { access_token: 'a', expires_in: -5 },
      { access_token: 'a', expires_in: 'soon' },
      { access_token: 'a', expires_at: 'not a time' },
      { access_token: 'a', expires_at: 1, expires_in: 1 },
      { access_token: 'a', scope: 7 },
      { access_token: 'a', id_token: 'x' },
      { access_token: 'a\nb' },
      { refresh_token: 'r' },
    ];
    for (const credentials of bad) {
      const r = await put('oauth', { credentials });
      t.equal(r.status, 400, JSON.stringify(credentials));
      t.equal(r.code, 'bad_request');
    }
    t.equal((await proxy.admin('GET', '/api/entities/alice/connections/oauth')).status, 404, 'none was stored');
  });
  await t.test('oauth2: a good token set is injected; the API shows no token', async (t) => {
    const ok = await put('oauth', { credentials: { access_token: 'oauth-access-1', refresh_token: 'oauth-refresh-1', expires_in: 3600, scope: 'read write' } });
    t.equal(ok.status, 200);
    t.notMatch(ok.text, /oauth-access-1|oauth-refresh-1/);
    const withAt = await put('oauth', { credentials: { access_token: 'oauth-access-2', expires_at: '2099-01-01T00:00:00Z', scope: ['read'] } });
    t.equal(withAt.status, 200);
    const r = await viaProxy(proxy.port, `${up.origin}/oauth/me`, { headers: { 'X-Entity-Id': 'alice' } });
    t.equal(r.status, 200);
    t.equal(up.seen.at(-1)!.headers.authorization, 'Bearer oauth-access-2');
    t.notMatch(proxy.logs.text, /oauth-access|oauth-refresh/);
  });
});
