import { writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import t from 'tap';
import { configDir, startProxy, startUpstream, viaProxy, type Upstream } from '../support/servers.js';
import { testKey } from '../support/keys.js';

const bearer = (up: Upstream, i: number) => {
  const h = up.seen[i]?.headers.authorization ?? '';
  return h.replace(/^Bearer /, '');
};

for (const alg of ['RS256', 'PS256', 'ES256', 'EdDSA', 'HS256']) {
  t.test(`jwt ${alg}: the upstream verifies signature, claims, ttl and kid; the token is reused per entity`, async (t) => {
    const key = testKey(alg);
    const up = await startUpstream();
    const dir = configDir('store: memory\n', {
      billing: [
        `hosts: ["127.0.0.1:${up.port}"]`,
        'upstream: http',
        'auth:',
        '  type: jwt',
        `  algorithm: ${alg}`,
        '  private_key: ${BILLING_KEY}',
        '  key_id: credproxy-1',
        '  ttl: 120',
        '  claims: { iss: credproxy, sub: "{{entity}}", aud: "https://billing.example", roles: [reader, "{{entity}}-owner"] }',
        '',
      ].join('\n'),
    });
    // No stored connection: the key is in the YAML, so any entity gets a token (DESIGN.md).
    const proxy = await startProxy(dir, { env: { BILLING_KEY: key.privateText } });
    t.teardown(async () => {
      await proxy.close();
      await up.close();
    });
    const send = (entity: string) => viaProxy(proxy.port, `${up.origin}/invoices`, { headers: { 'X-Entity-Id': entity } });
    t.equal((await send('alice')).status, 200);
    t.equal((await send('alice')).status, 200);
    t.equal((await send('bob@example.com')).status, 200);

    const first = bearer(up, 0);
    const { payload, protectedHeader } = await jwtVerify(first, key.verifyKey, {
      algorithms: [alg],
      issuer: 'credproxy',
      audience: 'https://billing.example',
      subject: 'alice',
    });
    t.equal(protectedHeader.kid, 'credproxy-1');
    t.equal(protectedHeader.typ, 'JWT');
    t.equal(payload.exp! - payload.iat!, 120, 'exp − iat = ttl');
    t.equal(payload.nbf, payload.iat);
    t.match(payload.jti, /^[0-9a-f-]{36}$/);
    t.same(payload.roles, ['reader', 'alice-owner']);

    t.equal(bearer(up, 1), first, 'a second request within the ttl reuses the token');
    const bobs = bearer(up, 2);
    t.not(bobs, first, 'another entity gets another token');
    const bob = await jwtVerify(bobs, key.verifyKey, { algorithms: [alg], subject: 'bob@example.com' });
    t.not(bob.payload.jti, payload.jti);
    t.notMatch(proxy.logs.text, first);
  });
}

t.test('jwt with each entity its own key, stored like any credential', async (t) => {
  const alice = testKey('ES256');
  const bob = testKey('ES256');
  const up = await startUpstream();
  const dir = configDir('store: memory\n', {
    partner: [
      `hosts: ["127.0.0.1:${up.port}"]`,
      'upstream: http',
      'auth:',
      '  type: jwt',
      '  algorithm: ES256',
      '  fields: [{ name: account, secret: false }]',
      '  claims: { iss: "{{account}}", sub: "{{entity}}" }',
      '',
    ].join('\n'),
  });
  const proxy = await startProxy(dir);
  t.teardown(async () => {
    await proxy.close();
    await up.close();
  });
  const missing = await viaProxy(proxy.port, `${up.origin}/`, { headers: { 'X-Entity-Id': 'alice' } });
  t.equal(missing.status, 424, 'a key from the connection means a connection is needed');
  t.equal(missing.headers['x-credproxy-error'], 'connection_missing');

  const integ = (await (await proxy.admin('GET', '/api/integrations/partner')).json()) as { schemes: Array<{ needs_connection: boolean; fields: Array<{ name: string }> }> };
  t.same(integ.schemes[0]!.fields.map((f) => f.name), ['account', 'private_key', 'key_id']);
  t.equal(integ.schemes[0]!.needs_connection, true);

  t.equal((await proxy.connect('alice', 'partner', { credentials: { account: 'acme', private_key: alice.privateText, key_id: 'alice-k1' } })).status, 200);
  t.equal((await proxy.connect('bob', 'partner', { credentials: { account: 'globex', private_key: bob.privateJwk } })).status, 200);
  const bad = await proxy.connect('carol', 'partner', { credentials: { account: 'x', private_key: testKey('RS256').privateText } });
  t.equal(bad.status, 400);
  t.match(((await bad.json()) as { error: { message: string } }).error.message, /ES256 needs an EC key on prime256v1; this is rsa/);
  const view = await (await proxy.admin('GET', '/api/entities/alice/connections/partner')).text();
  t.notMatch(view, /PRIVATE KEY/, 'the key is never shown back');

  t.equal((await viaProxy(proxy.port, `${up.origin}/`, { headers: { 'X-Entity-Id': 'alice' } })).status, 200);
  t.equal((await viaProxy(proxy.port, `${up.origin}/`, { headers: { 'X-Entity-Id': 'bob' } })).status, 200);
  const a = await jwtVerify(bearer(up, 0), alice.verifyKey, { issuer: 'acme', subject: 'alice' });
  t.equal(a.protectedHeader.kid, 'alice-k1');
  await jwtVerify(bearer(up, 1), bob.verifyKey, { issuer: 'globex', subject: 'bob' });
  await t.rejects(jwtVerify(bearer(up, 1), alice.verifyKey), 'bob’s token is not signed with alice’s key');

  // A new key for alice: the cached token of the old connection is not handed out any more.
  const alice2 = testKey('ES256');
  await proxy.connect('alice', 'partner', { credentials: { account: 'acme', private_key: alice2.privateText } });
  await viaProxy(proxy.port, `${up.origin}/`, { headers: { 'X-Entity-Id': 'alice' } });
  await jwtVerify(bearer(up, 2), alice2.verifyKey, { subject: 'alice' });
});

t.test('jwt keys from file: (relative to the working directory) and JWK; the JWK kid is used', async (t) => {
  const key = testKey('RS256');
  const up = await startUpstream();
  const dir = configDir('store: memory\n', {});
  const jwk = { ...JSON.parse(key.privateJwk), kid: 'jwk-kid' };
  const file = join(dir, 'key.jwk');
  writeFileSync(file, `${JSON.stringify(jwk)}\n`);
  writeFileSync(
    join(dir, 'integrations', 'files.yaml'),
    `hosts: ["127.0.0.1:${up.port}"]\nupstream: http\nauth: { type: jwt, algorithm: RS256, private_key: "file:${relative(process.cwd(), file)}", claims: { sub: "{{entity}}" } }\n`,
  );
  const proxy = await startProxy(dir);
  t.teardown(async () => {
    await proxy.close();
    await up.close();
  });
  t.equal((await viaProxy(proxy.port, `${up.origin}/`, { headers: { 'X-Entity-Id': 'alice' } })).status, 200);
  const token = bearer(up, 0);
  t.equal(decodeProtectedHeader(token).kid, 'jwk-kid');
  t.equal(decodeJwt(token).exp! - decodeJwt(token).iat!, 300, 'default ttl is 300 s');
  await jwtVerify(token, key.verifyKey, { subject: 'alice' });
});

t.test('a jwt the upstream refuses (refresh_on) is not handed out again', async (t) => {
  const key = testKey('HS256');
  let refuse = true;
  const up = await startUpstream((_req, res) => {
    res.writeHead(refuse ? 401 : 200).end();
    refuse = false;
  });
  const dir = configDir('store: memory\n', {
    api: `hosts: ["127.0.0.1:${up.port}"]\nupstream: http\nauth: { type: jwt, algorithm: HS256, private_key: "${key.privateText}", claims: { sub: "{{entity}}" } }\n`,
  });
  const proxy = await startProxy(dir);
  t.teardown(async () => {
    await proxy.close();
    await up.close();
  });
  t.equal((await viaProxy(proxy.port, `${up.origin}/`, { headers: { 'X-Entity-Id': 'alice' } })).status, 200, 'the 401 is answered by a replay');
  t.equal(up.seen.length, 2, 'refused once, replayed once');
  t.not(bearer(up, 1), bearer(up, 0), 'the replay carries a fresh token');
  t.equal((await viaProxy(proxy.port, `${up.origin}/`, { headers: { 'X-Entity-Id': 'alice' } })).status, 200);
  t.equal(bearer(up, 2), bearer(up, 1), 'and that one is reused');
});

t.test('jwt with keys per labelled connection: each account signs with its own key, even written in the same millisecond', async (t) => {
  const home = testKey('ES256');
  const work = testKey('ES256');
  const up = await startUpstream();
  const dir = configDir('store: memory\n', {
    partner: `hosts: ["127.0.0.1:${up.port}"]\nupstream: http\nauth: { type: jwt, algorithm: ES256, claims: { sub: "{{entity}}" } }\n`,
  });
  const proxy = await startProxy(dir);
  t.teardown(async () => {
    await proxy.close();
    await up.close();
  });
  // Same updated_at on purpose: minted tokens are cached per connection, and the label is part of that.
  const base = { entity: 'alice', integration: 'partner', scheme: 'jwt', params: {}, status: 'active' as const, created_at: 1000, updated_at: 1000 };
  await proxy.runtime.store.put({ ...base, credentials: { private_key: home.privateText } });
  await proxy.runtime.store.put({ ...base, label: 'work', credentials: { private_key: work.privateText } });
  const send = (headers: Record<string, string>) => viaProxy(proxy.port, `${up.origin}/`, { headers: { 'X-Entity-Id': 'alice', ...headers } });
  t.equal((await send({})).status, 200);
  t.equal((await send({ 'X-Connection-Label': 'work' })).status, 200);
  await jwtVerify(bearer(up, 0), home.verifyKey, { subject: 'alice' });
  await jwtVerify(bearer(up, 1), work.verifyKey, { subject: 'alice' });
  t.not(bearer(up, 0), bearer(up, 1), 'not the default account\'s cached token');
});
