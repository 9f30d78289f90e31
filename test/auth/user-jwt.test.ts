import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { SignJWT } from 'jose';
import { ConfigError, loadConfig } from '../support/config.js';
import { jwtTimes } from '../../src/auth/user-jwt.js';
import { configDir, errorOf, startProxy, startUpstream, viaProxy, type TestProxy, type Upstream } from '../support/servers.js';

/**
 * JWTs users paste as bearer tokens or API keys: exp/nbf are read without a key (an expired
 * one is never sent), and `jwt_verify` checks signature, issuer and audience when stored,
 * against a JWKS served by a real local HTTP server or a configured public key.
 */

const now = () => Math.floor(Date.now() / 1000);
const es256 = () => generateKeyPairSync('ec', { namedCurve: 'P-256' });

function sign(key: KeyObject, claims: Record<string, unknown>, kid = 'k1'): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid }).sign(key);
}

async function proxyWith(t: Test, auth: string): Promise<{ proxy: TestProxy; up: Upstream }> {
  const up = await startUpstream();
  const dir = configDir('store: memory\n', { api: `hosts: ["127.0.0.1:${up.port}"]\nupstream: http\nauth: ${auth}\n` });
  const proxy = await startProxy(dir);
  t.teardown(async () => {
    await proxy.close();
    await up.close();
  });
  return { proxy, up };
}

const messageOf = async (r: Response) => ((await r.json()) as { error: { message: string } }).error.message;

t.test('jwtTimes reads exp and nbf of a JWT, nothing of an opaque token', async (t) => {
  const { privateKey } = es256();
  const jwt = await sign(privateKey, { exp: 2_000_000_000, nbf: 1_000_000_000 });
  t.same(jwtTimes(jwt), { exp: 2_000_000_000_000, nbf: 1_000_000_000_000 });
  t.same(jwtTimes(await sign(privateKey, { sub: 'x' })), { exp: undefined, nbf: undefined });
  t.equal(jwtTimes('sk-live-123'), undefined);
  t.equal(jwtTimes('a.b.c'), undefined, 'three parts that do not decode are no JWT');
});

t.test('a pasted JWT: expiry shown on the connection; once past it, 424 connection_expired without contacting upstream', async (t) => {
  const { proxy, up } = await proxyWith(t, '{ type: bearer }');
  const { privateKey } = es256();
  const exp = now() + 3600;
  const good = await sign(privateKey, { sub: 'alice', exp });
  const put = await proxy.connect('alice', 'api', { credentials: { token: good } });
  t.equal(put.status, 200);
  t.equal(((await put.json()) as { expires_at: string }).expires_at, new Date(exp * 1000).toISOString(), 'expiry from exp');
  t.equal((await viaProxy(proxy.port, `${up.origin}/x`, { headers: { 'X-Entity-Id': 'alice' } })).status, 200);
  t.equal(up.seen.at(-1)!.headers.authorization, `Bearer ${good}`);

  const opaque = await proxy.connect('bob', 'api', { credentials: { token: 'opaque-token' } });
  t.equal(((await opaque.json()) as { expires_at: string | null }).expires_at, null, 'an opaque token has no expiry');

  const expired = await proxy.connect('carol', 'api', { credentials: { token: await sign(privateKey, { exp: now() - 10 }) } });
  t.equal(expired.status, 400, 'an already expired JWT is refused when stored');
  t.match(await messageOf(expired), /credentials\.token: the JWT expired at/);
  const early = await proxy.connect('carol', 'api', { credentials: { token: await sign(privateKey, { nbf: now() + 3600 }) } });
  t.equal(early.status, 400);
  t.match(await messageOf(early), /not valid before/);

  // A JWT stored while it was valid, whose exp has since passed.
  const stale = await sign(privateKey, { exp: now() - 5 });
  const at = Date.now();
  await proxy.runtime.store.put({
    entity: 'dave', integration: 'api', scheme: 'bearer', params: {}, status: 'active',
    credentials: { token: stale }, expires_at: (now() - 5) * 1000, created_at: at, updated_at: at,
  });
  const before = up.seen.length;
  const r = await viaProxy(proxy.port, `${up.origin}/x`, { headers: { 'X-Entity-Id': 'dave' } });
  const e = errorOf(r);
  t.same([e.status, e.code, e.header], [424, 'connection_expired', 'connection_expired']);
  t.match(e.message, /expired at/);
  t.equal(up.seen.length, before, 'upstream never contacted');
  t.notMatch(r.body.toString(), new RegExp(stale.slice(-20)));
});

t.test('jwt_verify with a JWKS: a token signed by another key, or for another issuer or audience, is refused with why', async (t) => {
  const mine = es256();
  const other = es256();
  const jwks = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: [{ ...mine.publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'ES256', use: 'sig' }] }));
  });
  t.teardown(() => jwks.close());
  const { proxy, up } = await proxyWith(
    t,
    `{ type: api_key, fields: [key], jwt_verify: { jwks_url: "${jwks.origin}/.well-known/jwks.json", issuer: "https://issuer.test", audience: "api, other-api", algorithms: ES256 } }\ninject: { headers: { X-Api-Key: "{{key}}" } }`,
  );
  const claims = { iss: 'https://issuer.test', aud: 'api', exp: now() + 600 };
  const ok = await sign(mine.privateKey, claims);
  t.equal((await proxy.connect('alice', 'api', { credentials: { key: ok } })).status, 200);
  t.equal((await viaProxy(proxy.port, `${up.origin}/x`, { headers: { 'X-Entity-Id': 'alice' } })).status, 200);
  t.equal(up.seen.at(-1)!.headers['x-api-key'], ok);

  const cases: Array<[string, Promise<string> | string, RegExp]> = [
    ['another key, same kid', sign(other.privateKey, claims), /signature does not verify/],
    ['another key, unknown kid', sign(other.privateKey, claims, 'k9'), /not in the issuer's key set/],
    ['another issuer', sign(mine.privateKey, { ...claims, iss: 'https://evil.test' }), /"iss" claim/],
    ['another audience', sign(mine.privateKey, { ...claims, aud: 'someone-else' }), /"aud" claim/],
    ['not a JWT', 'plain-api-key', /accepts only JWTs/],
  ];
  for (const [what, token, why] of cases) {
    const r = await proxy.connect('mallory', 'api', { credentials: { key: await token } });
    t.equal(r.status, 400, `${what}: 400`);
    t.match(await messageOf(r), why, `${what}: says why`);
  }
  t.ok(jwks.seen.length >= 1, 'the key set was fetched from the JWKS server');
  t.equal((await proxy.admin('GET', '/api/entities/mallory/connections/api')).status, 404, 'nothing stored');
  t.notMatch(proxy.logs.text, /eyJ/, 'no token in the logs');

  const described = (await (await proxy.admin('GET', '/api/integrations/api')).json()) as { schemes: Array<Record<string, unknown>> };
  t.match(described.schemes[0], { type: 'api_key', jwt_verify: { key: 'jwks_url', issuer: 'https://issuer.test', audience: ['api', 'other-api'] } });
});

t.test('jwt_verify with a public key file; an unreachable JWKS is a 502, not a verdict on the token', async (t) => {
  const mine = es256();
  const other = es256();
  const pub = join(mkdtempSync(join(tmpdir(), 'credproxy-jwt-')), 'issuer.pem');
  writeFileSync(pub, mine.publicKey.export({ format: 'pem', type: 'spki' }));
  const { proxy } = await proxyWith(t, `{ type: bearer, jwt_verify: { public_key: "file:${pub}" } }`);
  t.equal((await proxy.connect('alice', 'api', { credentials: { token: await sign(mine.privateKey, { sub: 'a' }) } })).status, 200);
  const bad = await proxy.connect('alice', 'api', { credentials: { token: await sign(other.privateKey, { sub: 'a' }) } });
  t.equal(bad.status, 400);
  t.match(await messageOf(bad), /signature does not verify/);

  const jwk = JSON.stringify(mine.publicKey.export({ format: 'jwk' }));
  const strict = await proxyWith(t, `{ type: bearer, jwt_verify: { public_key: '${jwk}', algorithms: ES384 } }`);
  const alg = await strict.proxy.connect('alice', 'api', { credentials: { token: await sign(mine.privateKey, { sub: 'a' }) } });
  t.equal(alg.status, 400, 'a public JWK, and an algorithm outside the list');
  t.match(await messageOf(alg), /algorithm that is not allowed/);

  const down = await proxyWith(t, '{ type: bearer, jwt_verify: { jwks_url: "http://127.0.0.1:1/jwks" } }');
  const r = await down.proxy.connect('alice', 'api', { credentials: { token: await sign(mine.privateKey, { sub: 'a' }) } });
  t.equal(r.status, 502);
  t.match(await messageOf(r), /key set at http:\/\/127\.0\.0\.1:1\/jwks could not be fetched/);
});

t.test('jwt_verify config errors name the key', async (t) => {
  const dir = configDir('store: memory\n', {
    a: 'hosts: [a.test]\nauth: { type: bearer, jwt_verify: { issuer: x } }\n',
    b: 'hosts: [b.test]\nauth: { type: bearer, jwt_verify: { jwks_url: "ftp://x", public_key: y } }\n',
    c: 'hosts: [c.test]\nauth: { type: api_key, jwt_verify: { public_key: "not a key", algorithms: "ES256 none", colour: red } }\n',
    d: `hosts: [d.test]\nauth: { type: bearer, jwt_verify: { public_key: '${JSON.stringify(es256().privateKey.export({ format: 'jwk' }))}' } }\n`,
    // a PEM with literal \n, as environment variables often carry it
    e: `hosts: [e.test]\nauth: { type: bearer, jwt_verify: { public_key: '${es256().privateKey.export({ format: 'pem', type: 'pkcs8' }).toString().replace(/\n/g, '\\n')}' } }\n`,
    f: "hosts: [f.test]\nauth: { type: bearer, jwt_verify: { public_key: '{not json' } }\n",
    g: "hosts: [g.test]\nauth: { type: bearer, jwt_verify: { public_key: '{\"kty\":\"EC\"}', clock_skew: soon } }\n",
  });
  const err = t.throws(() => loadConfig(dir, { env: {} })) as ConfigError;
  t.ok(err instanceof ConfigError);
  t.match(err.message, /a\.yaml:2: jwt_verify: give exactly one of jwks_url and public_key/);
  t.match(err.message, /b\.yaml:2: jwt_verify\.jwks_url: "ftp:\/\/x" is not an http\(s\) URL/);
  t.match(err.message, /c\.yaml:2: jwt_verify\.public_key: not a PEM public key/);
  t.match(err.message, /c\.yaml:2: jwt_verify\.algorithms: "none"/);
  t.match(err.message, /c\.yaml:2: jwt_verify\.colour: unknown key/);
  t.match(err.message, /d\.yaml:2: jwt_verify\.public_key: this JWK holds a private key/);
  t.match(err.message, /e\.yaml:2: jwt_verify\.public_key: this is a private key/);
  t.match(err.message, /f\.yaml:2: jwt_verify\.public_key: looks like JSON but does not parse/);
  t.match(err.message, /g\.yaml:2: jwt_verify\.public_key: the JWK does not parse/);
  t.match(err.message, /g\.yaml:2: jwt_verify\.clock_skew: must be a whole number/);
});
