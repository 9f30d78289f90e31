import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { SCHEMES, withSchemes } from '../../src/auth/registry.js';
import { SchemeSet } from '../../src/auth/scheme-set.js';
import { hmacDemo } from '../fixtures/hmac-scheme.js';
import { loadConfig } from '../support/config.js';
import { logLine } from '../support/log-wait.js';
import { OAuthServer, protectedHandler } from '../support/oauth-server.js';
import { configDir, startProxy, startUpstream, viaProxy } from '../support/servers.js';

/**
 * A reload builds schemes only for definitions that changed: an integration whose `auth`
 * entry is the same keeps its scheme, and with it what the scheme minted. Real servers, and
 * requests through the proxy as a client sends them.
 */
t.test('a reload keeps the minted JWT and client-credentials token of unchanged integrations, and replaces edited ones', async (t) => {
  const as = await new OAuthServer().start();
  const ccUp = await startUpstream(protectedHandler(as));
  const jwtUp = await startUpstream();
  const otherUp = await startUpstream();
  const signed = (aud: string) =>
    [
      `hosts: ["127.0.0.1:${jwtUp.port}"]`,
      'upstream: http',
      'auth:',
      '  type: jwt',
      '  algorithm: HS256',
      '  private_key: ${SIGNING_SECRET}',
      `  claims: { sub: "{{entity}}", aud: ${aud} }`,
    ].join('\n');
  const cc = (scopes: string) =>
    [
      `hosts: ["127.0.0.1:${ccUp.port}"]`,
      'upstream: http',
      'auth:',
      '  type: oauth2_client_credentials',
      `  token_url: ${as.origin}/token`,
      `  client_id: ${as.clientId}`,
      '  client_secret: ${CC_SECRET}',
      `  scopes: [${scopes}]`,
    ].join('\n');
  const other = (refreshOn: string) => [`hosts: ["127.0.0.1:${otherUp.port}"]`, 'upstream: http', 'auth: { type: bearer }', `refresh_on: [${refreshOn}]`].join('\n');
  const dir = configDir('store: memory\n', { signed: signed('billing'), cc: cc('a'), other: other('401') });
  const proxy = await startProxy(dir, {
    watch: true,
    reloadDebounceMs: 50,
    env: { SIGNING_SECRET: 'a-signing-secret-of-32-bytes-or-more!', CC_SECRET: as.clientSecret },
  });
  t.teardown(async () => {
    await proxy.close();
    await Promise.all([as.close(), ccUp.close(), jwtUp.close(), otherUp.close()]);
  });
  const jwtSent = async () => {
    const r = await viaProxy(proxy.port, `${jwtUp.origin}/v1`, { headers: { 'X-Entity-Id': 'alice' } });
    t.equal(r.status, 200);
    return String(jwtUp.seen.at(-1)!.headers.authorization);
  };
  const ccStatus = async () => (await viaProxy(proxy.port, `${ccUp.origin}/v1`, { headers: { 'X-Entity-Id': 'alice' } })).status;

  const minted = await jwtSent();
  t.match(minted, /^Bearer ey/);
  t.equal(await ccStatus(), 200);
  t.equal(as.count('client_credentials'), 1, 'one token request before the reload');

  // Another integration's YAML changes: a reload, which must leave these two alone.
  writeFileSync(join(dir, 'integrations', 'other.yaml'), other('401, 403'));
  t.ok(await logLine(proxy.logs, /^(?=.*"msg":"config reloaded")(?=.*"changed":\["other"\])/, 10_000), 'the edit of other.yaml was reloaded');
  t.same(proxy.runtime.current.config.integrations.get('other')!.refresh_on, [401, 403], 'the new config is live');
  t.equal(await jwtSent(), minted, 'the same JWT goes upstream after the reload: nothing was signed anew');
  t.equal(await ccStatus(), 200);
  t.equal(as.count('client_credentials'), 1, 'the client-credentials token survived the reload: no new token request');

  // This integration's own definition changes: its scheme is built anew.
  writeFileSync(join(dir, 'integrations', 'signed.yaml'), signed('billing-v2'));
  writeFileSync(join(dir, 'integrations', 'cc.yaml'), cc('a, b'));
  t.ok(await logLine(proxy.logs, /^(?=.*"msg":"config reloaded")(?=.*"changed":\["cc","signed"\])/, 10_000), 'the edits of cc.yaml and signed.yaml were reloaded');
  const fresh = await jwtSent();
  t.not(fresh, minted, 'an edited jwt integration signs a new token');
  t.equal(JSON.parse(Buffer.from(fresh.split('.')[1]!, 'base64url').toString()).aud, 'billing-v2', 'with the new claims');
  t.equal(await ccStatus(), 200);
  t.equal(as.count('client_credentials'), 2, 'an edited client-credentials integration fetches a new token');
  t.equal(as.calls.at(-1)!.params.scope, 'a b', 'for the new scopes');
  t.notMatch(proxy.logs.text, new RegExp(as.clientSecret), 'no secret (nor a fingerprint input) in the log');
});

t.test('a key file rotated in place is a new definition, though the YAML text is the same', async (t) => {
  const up = await startUpstream();
  const dir = configDir('store: memory\n');
  const keyFile = join(dir, 'signing.key');
  writeFileSync(keyFile, 'first-secret-first-secret-first-secret!\n');
  const yaml = [`hosts: ["127.0.0.1:${up.port}"]`, 'upstream: http', `auth: { type: jwt, algorithm: HS256, private_key: "file:${keyFile}", claims: { sub: "{{entity}}" } }`].join('\n');
  writeFileSync(join(dir, 'integrations', 'signed.yaml'), yaml);
  const proxy = await startProxy(dir);
  t.teardown(async () => {
    await proxy.close();
    await up.close();
  });
  const before = proxy.runtime.current.integrations.get('signed')!.live[0]!;
  t.same(proxy.reload().changed, [], 'same files: nothing changed');
  t.equal(proxy.runtime.current.integrations.get('signed')!.live[0]!.scheme, before.scheme, 'the same scheme instance is kept');
  writeFileSync(keyFile, 'second-secret-second-secret-second-secret!\n');
  t.same(proxy.reload().changed, ['signed'], 'what the file holds is part of the definition');
  const after = proxy.runtime.current.integrations.get('signed')!.live[0]!;
  t.not(after.scheme, before.scheme, 'a new scheme for the new key');
  t.not(after.definition.fingerprint, before.definition.fingerprint);
  t.notMatch(after.definition.fingerprint, /second-secret/, 'the fingerprint is a hash, not the secret');
  t.notMatch(proxy.logs.text, /second-secret|first-secret/, 'the key never reaches the log');
});

t.test('a config checked against another catalog than the runtime builds from is refused by name', async (t) => {
  const dir = configDir('store: memory\n', { demo: 'hosts: [a.example]\nauth: { type: hmac_demo, header: X-Sig }\n' });
  const config = loadConfig(dir, { env: {}, schemes: withSchemes(SCHEMES, hmacDemo) });
  t.throws(() => new SchemeSet(SCHEMES).build(config), /auth type "hmac_demo" of integration "demo" is not in this runtime's scheme catalog/);
  const set = new SchemeSet(withSchemes(SCHEMES, hmacDemo));
  const first = set.build(config).get('demo')!.live[0]!.scheme;
  t.equal(set.build(config).get('demo')!.live[0]!.scheme, first, 'building the same definitions again keeps the instance');
  set.build(loadConfig(configDir('store: memory\n'), { env: {} }));
  t.not(set.build(config).get('demo')!.live[0]!.scheme, first, 'an integration that was gone for one build starts afresh');
});
