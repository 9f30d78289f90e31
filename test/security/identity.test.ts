import t from 'tap';
import { rawRequest } from '../support/raw.js';
import { assertRefused, securityFixture, TOKEN } from '../support/security.js';
import { startProxy, configDir, viaProxy } from '../support/servers.js';

const KEY_RUNNER = 'runner-key-0123456789abcdef';
const KEY_TEAM = 'team-key-0123456789abcdefgh';
const CLIENTS = `clients:
  - { name: runner, key: "\${RUNNER_KEY}" }
  - { name: team, key: "${KEY_TEAM}", entities: ["team-*", "bob"] }
`;
const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

t.test('entity ids that are not ids are 400 bad_request and nothing is forwarded', async (t) => {
  const fx = await securityFixture(t);
  const target = `${fx.owned.origin}/x`;
  const cases: Array<[name: string, headers: string]> = [
    ['X-Entity-Id given twice', 'X-Entity-Id: alice\r\nX-Entity-Id: bob\r\n'],
    ['X-Entity-Id given twice in different case', 'X-Entity-Id: alice\r\nx-entity-id: alice\r\n'],
    ['a comma-joined list of ids', 'X-Entity-Id: alice,bob\r\n'],
    ['a comma and space', 'X-Entity-Id: alice, bob\r\n'],
    ['a tab inside the id', 'X-Entity-Id: ali\tce\r\n'],
    ['an empty id', 'X-Entity-Id: \r\n'],
    ['a 10 KB id', `X-Entity-Id: ${'a'.repeat(10 * 1024)}\r\n`],
    ['257 characters, one over the limit', `X-Entity-Id: ${'a'.repeat(257)}\r\n`],
    ['a path-like id', 'X-Entity-Id: ../admin\r\n'],
    ['a non-ASCII id', 'X-Entity-Id: alicé\r\n'],
    ['a JSON-breaking id', 'X-Entity-Id: a"}\r\n'],
    ['an invalid proxy user name', `Proxy-Authorization: ${basic('al ice', 'x')}\r\n`],
    ['Proxy-Authorization given twice', `Proxy-Authorization: ${basic('alice', 'x')}\r\nProxy-Authorization: ${basic('bob', 'y')}\r\n`],
    // Connection labels (several accounts per entity) follow the same rules as entity ids.
    ['X-Connection-Label given twice, even with the same value', 'X-Entity-Id: alice\r\nX-Connection-Label: work\r\nx-connection-label: work\r\n'],
    ['a comma-joined list of labels', 'X-Entity-Id: alice\r\nX-Connection-Label: work,personal\r\n'],
    ['an empty label', 'X-Entity-Id: alice\r\nX-Connection-Label: \r\n'],
    ['a path-like label', 'X-Entity-Id: alice\r\nX-Connection-Label: ../default\r\n'],
    ['a 65-character label', `X-Entity-Id: alice\r\nX-Connection-Label: ${'a'.repeat(65)}\r\n`],
  ];
  for (const [name, headers] of cases) {
    await t.test(name, async (t) => {
      const before = fx.seenCount();
      const r = await rawRequest(fx.proxy.port, `GET ${target} HTTP/1.1\r\nHost: x\r\n${headers}\r\n`);
      assertRefused(t, fx, before, r, 400, 'bad_request');
    });
  }
  await t.test('no entity at all, for an owned host, is 400 entity_required', async (t) => {
    const before = fx.seenCount();
    const r = await viaProxy(fx.proxy.port, target);
    assertRefused(t, fx, before, r, 400, 'entity_required');
  });
  await t.test('an id of exactly 256 characters is accepted (and has no connection)', async (t) => {
    const before = fx.seenCount();
    const r = await viaProxy(fx.proxy.port, target, { headers: { 'X-Entity-Id': 'a'.repeat(256) } });
    assertRefused(t, fx, before, r, 424, 'connection_missing');
  });
});

t.test('clients: Proxy-Authorization is required, checked, and limited to entity patterns', async (t) => {
  const fx = await securityFixture(t, CLIENTS, { env: { RUNNER_KEY: KEY_RUNNER } });
  const target = `${fx.owned.origin}/x`;
  const refused: Array<[name: string, headers: Record<string, string>, status: number, code: string]> = [
    ['no Proxy-Authorization', { 'X-Entity-Id': 'alice' }, 407, 'proxy_auth_required'],
    ['a wrong key (Basic)', { 'X-Entity-Id': 'alice', 'Proxy-Authorization': basic('', 'wrong-key-0123456789') }, 407, 'proxy_auth_required'],
    ['a wrong key (Bearer)', { 'X-Entity-Id': 'alice', 'Proxy-Authorization': 'Bearer wrong-key-0123456789' }, 407, 'proxy_auth_required'],
    ['a key prefix', { 'X-Entity-Id': 'alice', 'Proxy-Authorization': `Bearer ${KEY_RUNNER.slice(0, -1)}` }, 407, 'proxy_auth_required'],
    ['the key as Basic user name, not password', { 'X-Entity-Id': 'alice', 'Proxy-Authorization': `Basic ${Buffer.from(KEY_RUNNER).toString('base64')}` }, 407, 'proxy_auth_required'],
    ['another scheme (Digest)', { 'X-Entity-Id': 'alice', 'Proxy-Authorization': `Digest ${KEY_RUNNER}` }, 407, 'proxy_auth_required'],
    ['the key in Authorization instead', { 'X-Entity-Id': 'alice', Authorization: `Bearer ${KEY_RUNNER}` }, 407, 'proxy_auth_required'],
    ['a valid client acting for an entity outside its patterns', { 'X-Entity-Id': 'alice', 'Proxy-Authorization': `Bearer ${KEY_TEAM}` }, 403, 'entity_denied'],
    ['the pattern is anchored (xteam-1 is not team-*)', { 'X-Entity-Id': 'xteam-1', 'Proxy-Authorization': `Bearer ${KEY_TEAM}` }, 403, 'entity_denied'],
    ['the denied entity as Basic user name', { 'Proxy-Authorization': basic('alice', KEY_TEAM) }, 403, 'entity_denied'],
  ];
  for (const [name, headers, status, code] of refused) {
    await t.test(name, async (t) => {
      const before = fx.seenCount();
      const r = await viaProxy(fx.proxy.port, target, { headers });
      assertRefused(t, fx, before, r, status, code);
      if (status === 407) t.equal(r.headers['proxy-authenticate'], 'Basic realm="credproxy"');
    });
  }
  const allowed: Array<[name: string, headers: Record<string, string>]> = [
    ['Basic with empty user and the key as password', { 'X-Entity-Id': 'alice', 'Proxy-Authorization': basic('', KEY_RUNNER) }],
    ['Basic with the entity as user name', { 'Proxy-Authorization': basic('alice', KEY_RUNNER) }],
    ['Bearer', { 'X-Entity-Id': 'alice', 'Proxy-Authorization': `Bearer ${KEY_RUNNER}` }],
    ['lower-case scheme name', { 'X-Entity-Id': 'alice', 'Proxy-Authorization': `bearer ${KEY_RUNNER}` }],
  ];
  for (const [name, headers] of allowed) {
    await t.test(name, async (t) => {
      const r = await viaProxy(fx.proxy.port, target, { headers });
      t.equal(r.status, 200);
      const seen = fx.owned.seen.at(-1)!;
      t.equal(seen.headers.authorization, `Bearer ${TOKEN}`);
      t.notOk(seen.headers['proxy-authorization'], 'the proxy key never goes upstream');
    });
  }
  await t.test('a restricted client may act for its own entities', async (t) => {
    const r = await viaProxy(fx.proxy.port, target, { headers: { 'X-Entity-Id': 'team-7', 'Proxy-Authorization': `Bearer ${KEY_TEAM}` } });
    t.equal(r.status, 424, 'allowed through to the credential step (team-7 has no connection)');
    t.equal(r.headers['x-credproxy-error'], 'connection_missing');
  });
  await t.test('the admin API is not behind the proxy key', async (t) => {
    t.equal((await fx.proxy.admin('GET', '/api/integrations')).status, 200);
  });
  t.ok(fx.proxy.logs.lines.some((l) => /"client":"team".*"entity":"team-7"/.test(l)), 'the request log names the client');
  t.notMatch(fx.proxy.logs.text, KEY_RUNNER, 'no proxy key in the logs');
  t.notMatch(fx.proxy.logs.text, KEY_TEAM, 'no proxy key in the logs');
});

t.test('without clients, a non-loopback listen address needs allow_unauthenticated', async (t) => {
  const refused = configDir('store: memory\n');
  await t.rejects(startProxy(refused, { host: '0.0.0.0' }), /refusing to listen on 0\.0\.0\.0.*allow_unauthenticated/);
  const open = await startProxy(configDir('store: memory\nallow_unauthenticated: true\n'), { host: '0.0.0.0' });
  t.teardown(() => open.close());
  t.match(open.logs.text, /allow_unauthenticated is set/, 'the open proxy is announced at start');
  const withClients = await startProxy(configDir(`store: memory\nclients: [{ name: a, key: "${KEY_TEAM}" }]\n`), { host: '0.0.0.0' });
  t.teardown(() => withClients.close());
  t.match(withClients.logs.text, /must authenticate/);
});
