import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { loadConfig } from '../support/config.js';
import { snapshotOf } from '../../src/runtime.js';
import { errorOf, integrationYaml, setup, viaProxy } from '../support/servers.js';

/**
 * Every scheme end to end: a connection stored through the admin API, a request through the
 * proxy over a real socket, and what a real upstream received.
 */

const host = (port: number) => `127.0.0.1:${port}`;

t.test('api_key: default inject is Authorization: Bearer, the client copy is replaced', async (t) => {
  const { up, proxy } = await setup(t, { integrations: (up) => ({ svc: integrationYaml([host(up.port)], '{ type: api_key }') }) });
  t.equal((await proxy.connect('alice', 'svc', { credentials: { api_key: 'k-alice-1' } })).status, 200);
  const r = await viaProxy(proxy.port, `${up.origin}/a`, { headers: { 'X-Entity-Id': 'alice', authorization: ['Bearer mine', 'Basic x'] } });
  t.equal(r.status, 200);
  const seen = up.seen.at(-1)!;
  t.same(seen.rawHeaders.filter((_h, i, a) => i % 2 === 1 && a[i - 1]!.toLowerCase() === 'authorization'), ['Bearer k-alice-1'], 'exactly one Authorization, the injected one');
  t.notMatch(proxy.logs.text, /k-alice-1/, 'the key never reaches the log');
});

t.test('api_key in a custom header, with a declared field name and {{entity}}', async (t) => {
  const { up, proxy } = await setup(t, {
    integrations: (up) => ({
      svc: integrationYaml([host(up.port)], '{ type: api_key, fields: [{ name: key, pattern: "^sk-" }] }', 'inject:\n  headers:\n    X-Api-Key: "{{key}}"\n    X-On-Behalf-Of: "user-{{entity}}"\n'),
    }),
  });
  t.equal((await proxy.connect('bob', 'svc', { credentials: { key: 'sk-bob' } })).status, 200);
  const r = await viaProxy(proxy.port, `${up.origin}/`, {
    headers: { 'X-Entity-Id': 'bob', 'x-api-key': 'sk-spoof', 'X-On-Behalf-Of': 'user-mallory', Authorization: 'Bearer client-own' },
  });
  t.equal(r.status, 200);
  const seen = up.seen.at(-1)!;
  t.equal(seen.headers['x-api-key'], 'sk-bob');
  t.equal(seen.headers['x-on-behalf-of'], 'user-bob');
  t.equal(seen.rawHeaders.filter((h) => h.toLowerCase() === 'x-api-key').length, 1);
  t.equal(seen.headers.authorization, 'Bearer client-own', 'headers credproxy does not inject pass through');
});

t.test('api_key in the query: the client copies are removed, other parameters kept in order', async (t) => {
  const { up, proxy } = await setup(t, {
    integrations: (up) => ({ maps: integrationYaml([host(up.port)], '{ type: api_key }', 'inject:\n  query:\n    key: "{{api_key}}"\n') }),
  });
  t.equal((await proxy.connect('alice', 'maps', { credentials: { api_key: 'q&s=1 x' } })).status, 200);
  const r = await viaProxy(proxy.port, `${up.origin}/geo?a=1&key=spoof&b=2&k%65y=spoof2&key`, { headers: { 'X-Entity-Id': 'alice' } });
  t.equal(r.status, 200);
  const url = new URL(up.seen.at(-1)!.url, 'http://x');
  t.same(url.searchParams.getAll('key'), ['q&s=1 x'], 'one key, the injected one, encoded so it cannot add parameters');
  t.same([...url.searchParams.keys()], ['a', 'b', 'key']);
  t.equal(url.pathname, '/geo');
  t.notOk(up.seen.at(-1)!.headers.authorization, 'a query inject adds no header');

  const bare = await viaProxy(proxy.port, `${up.origin}/geo`, { headers: { 'X-Entity-Id': 'alice' } });
  t.equal(bare.status, 200);
  t.equal(up.seen.at(-1)!.url, '/geo?key=q%26s%3D1%20x');
  t.notMatch(proxy.logs.text, /q&s=1 x|q%26s/, 'the query secret is not logged (the log keeps the path only)');
});

t.test('bearer: default and custom inject', async (t) => {
  const { up, proxy } = await setup(t, {
    integrations: (up) => ({
      plain: integrationYaml([host(up.port)], '{ type: bearer }', 'paths: ["/plain"]\n'),
      custom: integrationYaml([host(up.port)], '{ type: bearer, inject: { headers: { X-Token: "tok {{token}}" } } }', 'paths: ["/custom"]\n'),
    }),
  });
  t.equal((await proxy.connect('e1', 'plain', { credentials: { token: 't-plain' } })).status, 200);
  t.equal((await proxy.connect('e1', 'custom', { credentials: { token: 't-custom' } })).status, 200);
  await viaProxy(proxy.port, `${up.origin}/plain/x`, { headers: { 'X-Entity-Id': 'e1' } });
  t.equal(up.seen.at(-1)!.headers.authorization, 'Bearer t-plain');
  await viaProxy(proxy.port, `${up.origin}/custom`, { headers: { 'X-Entity-Id': 'e1', 'x-token': 'nope' } });
  t.equal(up.seen.at(-1)!.headers['x-token'], 'tok t-custom');
  t.notOk(up.seen.at(-1)!.headers.authorization);
});

t.test('basic: Authorization: Basic base64(username:password); a colon in the password is fine', async (t) => {
  const { up, proxy } = await setup(t, { integrations: (up) => ({ jira: integrationYaml([host(up.port)], '{ type: basic }') }) });
  t.equal((await proxy.connect('carol@example.com', 'jira', { credentials: { username: 'carol', password: 'p:ä ss' } })).status, 200);
  await viaProxy(proxy.port, `${up.origin}/rest`, { headers: { 'X-Entity-Id': 'carol@example.com', Authorization: 'Basic c3Bvb2Y6eA==' } });
  const auth = up.seen.at(-1)!.headers.authorization!;
  t.equal(auth, `Basic ${Buffer.from('carol:p:ä ss', 'utf8').toString('base64')}`);
  t.equal(up.seen.at(-1)!.rawHeaders.filter((h) => h.toLowerCase() === 'authorization').length, 1);

  t.equal((await proxy.connect('euro', 'jira', { credentials: { username: 'e', password: 'p\u20ac' } })).status, 200, 'any character in a basic password: it travels base64-encoded');
  await viaProxy(proxy.port, `${up.origin}/rest`, { headers: { 'X-Entity-Id': 'euro' } });
  t.equal(up.seen.at(-1)!.headers.authorization, `Basic ${Buffer.from('e:p\u20ac', 'utf8').toString('base64')}`);

  const colon = await proxy.connect('carol@example.com', 'jira', { credentials: { username: 'ca:rol', password: 'x' } });
  t.equal(colon.status, 400, 'RFC 7617: no colon in the user name');
});

t.test('oauth2: a token set stored through PUT is injected as Bearer', async (t) => {
  const oauth = '\n  type: oauth2\n  authorize_url: https://auth.example/authorize\n  token_url: https://auth.example/token\n  client_id: cid\n';
  const { up, proxy } = await setup(t, { integrations: (up) => ({ gh: integrationYaml([host(up.port)], oauth) }) });
  const put = await proxy.connect('dave', 'gh', { credentials: { access_token: 'at-dave', refresh_token: 'rt-dave', expires_in: 3600, scope: 'repo read:user', token_type: 'bearer' } });
  t.equal(put.status, 200);
  const view = (await put.json()) as { fields: string[]; scopes: string[]; expires_at: string };
  t.same(view.fields, ['access_token', 'refresh_token']);
  t.same(view.scopes, ['repo', 'read:user']);
  t.ok(Date.parse(view.expires_at) > Date.now());
  t.notMatch(JSON.stringify(view), /at-dave|rt-dave/);
  await viaProxy(proxy.port, `${up.origin}/user`, { headers: { 'X-Entity-Id': 'dave' } });
  t.equal(up.seen.at(-1)!.headers.authorization, 'Bearer at-dave');
  t.notMatch(proxy.logs.text, /at-dave|rt-dave/);
});

t.test('a connection is per entity: another entity gets 424 naming entity and integration', async (t) => {
  const { up, proxy } = await setup(t, { integrations: (up) => ({ svc: integrationYaml([host(up.port)], '{ type: bearer }') }) });
  await proxy.connect('alice', 'svc', { credentials: { token: 'alice-only' } });
  const r = await viaProxy(proxy.port, `${up.origin}/`, { headers: { 'X-Entity-Id': 'bob' } });
  const e = errorOf(r);
  t.equal(e.status, 424);
  t.equal(e.code, 'connection_missing');
  t.equal(e.header, 'connection_missing');
  t.match(e.message, /"bob"/);
  t.match(e.message, /"svc"/);
  t.equal(up.seen.length, 0, 'nothing was forwarded');

  t.equal((await proxy.admin('DELETE', '/api/entities/alice/connections/svc')).status, 204);
  const gone = await viaProxy(proxy.port, `${up.origin}/`, { headers: { 'X-Entity-Id': 'alice' } });
  t.equal(errorOf(gone).code, 'connection_missing', 'a deleted connection is no longer used (the cache was invalidated)');
});

t.test('several schemes: the connection picks one; a connection whose scheme is gone is 424', async (t) => {
  const { up, proxy, dir } = await setup(t, {
    integrations: (up) => ({ multi: integrationYaml([host(up.port)], '\n  - { type: bearer }\n  - { type: basic, inject: { headers: { X-Basic: "Basic {{basic_auth}}" } } }') }),
  });
  t.equal((await proxy.connect('u1', 'multi', { scheme: 'basic', credentials: { username: 'u', password: 'p' } })).status, 200);
  await viaProxy(proxy.port, `${up.origin}/`, { headers: { 'X-Entity-Id': 'u1' } });
  t.equal(up.seen.at(-1)!.headers['x-basic'], 'Basic dTpw');
  t.notOk(up.seen.at(-1)!.headers.authorization);
  t.equal((await proxy.connect('u2', 'multi', { credentials: { token: 'tk' } })).status, 200, 'the first scheme is the default');
  await viaProxy(proxy.port, `${up.origin}/`, { headers: { 'X-Entity-Id': 'u2' } });
  t.equal(up.seen.at(-1)!.headers.authorization, 'Bearer tk');
  const none = await viaProxy(proxy.port, `${up.origin}/`, { headers: { 'X-Entity-Id': 'u3' } });
  t.equal(errorOf(none).code, 'connection_missing');
  const bad = await proxy.connect('u1', 'multi', { scheme: 'jwt', credentials: {} });
  t.equal(bad.status, 400);
  t.match(await bad.text(), /offers bearer, basic/);

  // What a config reload does: swap the snapshot. The basic connection's scheme is gone.
  writeFileSync(join(dir, 'integrations', 'multi.yaml'), integrationYaml([host(up.port)], '{ type: bearer }'));
  proxy.runtime.current = snapshotOf(loadConfig(dir, { env: {} }), proxy.runtime.schemes);
  const gone = await viaProxy(proxy.port, `${up.origin}/`, { headers: { 'X-Entity-Id': 'u1' } });
  t.equal(errorOf(gone).code, 'connection_missing');
  t.match(errorOf(gone).message, /uses scheme "basic", which integration "multi" no longer offers/);
});

t.test('connection status: initiated and failed are connection_missing (saying which), expired is connection_expired', async (t) => {
  const { up, proxy } = await setup(t, { integrations: (up) => ({ svc: integrationYaml([host(up.port)], '{ type: bearer }') }) });
  const base = { integration: 'svc', scheme: 'bearer', params: {}, credentials: { token: 'status-token' }, created_at: 1, updated_at: 1 };
  // The connect flow that sets these statuses comes later; the store is where they live.
  await proxy.runtime.store.put({ ...base, entity: 'ini', status: 'initiated' });
  await proxy.runtime.store.put({ ...base, entity: 'fail', status: 'failed', reason: 'access_denied' });
  await proxy.runtime.store.put({ ...base, entity: 'fail2', status: 'failed' });
  await proxy.runtime.store.put({ ...base, entity: 'exp', status: 'expired' });
  const as = async (entity: string) => errorOf(await viaProxy(proxy.port, `${up.origin}/`, { headers: { 'X-Entity-Id': entity } }));
  t.match(await as('ini'), { status: 424, code: 'connection_missing', message: /"ini".*"svc".*started but not finished/ });
  t.match(await as('fail'), { status: 424, code: 'connection_missing', message: /flow failed \(access_denied\)/ });
  t.match(await as('fail2'), { status: 424, code: 'connection_missing', message: /flow failed$/ });
  t.match(await as('exp'), { status: 424, code: 'connection_expired', header: 'connection_expired', message: /"exp".*"svc" expired/ });
  t.equal(up.seen.length, 0, 'none of them was forwarded');
});

t.test('a template whose value the connection lacks is 424, never an empty credential', async (t) => {
  const { up, proxy } = await setup(t, {
    integrations: (up) => ({
      svc: integrationYaml([host(up.port)], '{ type: api_key, fields: [api_key, { name: org, optional: true }] }', 'inject: { headers: { Authorization: "Bearer {{api_key}}", X-Org: "{{org}}" } }\n'),
    }),
  });
  await proxy.connect('alice', 'svc', { credentials: { api_key: 'k' } });
  const e = errorOf(await viaProxy(proxy.port, `${up.origin}/`, { headers: { 'X-Entity-Id': 'alice' } }));
  t.match(e, { status: 424, code: 'connection_missing', message: /lacks org/ });
  t.equal(up.seen.length, 0);
  await proxy.connect('alice', 'svc', { credentials: { api_key: 'k', org: 'acme' } });
  t.equal((await viaProxy(proxy.port, `${up.origin}/`, { headers: { 'X-Entity-Id': 'alice' } })).status, 200);
  t.equal(up.seen.at(-1)!.headers['x-org'], 'acme');
});

t.test('entity_header names another header: it is read and removed, X-Entity-Id is then an ordinary header', async (t) => {
  const { up, proxy } = await setup(t, {
    settings: 'store: memory\nentity_header: X-User\n',
    integrations: (up) => ({ svc: integrationYaml([host(up.port)], '{ type: bearer }') }),
  });
  await proxy.connect('alice', 'svc', { credentials: { token: 'tk' } });
  const missing = errorOf(await viaProxy(proxy.port, `${up.origin}/`, { headers: { 'X-Entity-Id': 'alice' } }));
  t.equal(missing.code, 'entity_required');
  t.match(missing.message, /X-User/);
  t.equal((await viaProxy(proxy.port, `${up.origin}/`, { headers: { 'x-user': 'alice', 'X-Entity-Id': 'other' } })).status, 200);
  t.equal(up.seen.at(-1)!.headers.authorization, 'Bearer tk');
  t.notOk(up.seen.at(-1)!.headers['x-user']);
  t.equal(up.seen.at(-1)!.headers['x-entity-id'], 'other');
});

t.test('concurrent requests for different entities never mix credentials', async (t) => {
  const { up, proxy } = await setup(t, { integrations: (up) => ({ svc: integrationYaml([host(up.port)], '{ type: bearer }') }) });
  const entities = ['alice', 'bob', 'carol', 'dave'];
  for (const e of entities) await proxy.connect(e, 'svc', { credentials: { token: `token-of-${e}` } });
  const results = await Promise.all(
    Array.from({ length: 80 }, (_v, i) => {
      const e = entities[i % entities.length]!;
      return viaProxy(proxy.port, `${up.origin}/who?i=${i}&e=${e}`, { headers: { 'X-Entity-Id': e } }).then((r) => ({ e, r }));
    }),
  );
  const wrong = results.filter(({ e, r }) => (r.json() as { headers: { authorization?: string } }).headers.authorization !== `Bearer token-of-${e}`);
  t.equal(wrong.length, 0, 'every upstream request carried its own entity\'s token');
  t.equal(up.seen.length, 80);
});
