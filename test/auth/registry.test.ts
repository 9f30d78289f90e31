import { Ajv } from 'ajv';
import t from 'tap';
import { SCHEMES, withSchemes } from '../../src/auth/registry.js';
import { integrationJsonSchema } from '../../src/config/json-schema.js';
import { hmacDemo, hmacSignature } from '../fixtures/hmac-scheme.js';
import { ConfigError, loadConfig } from '../support/config.js';
import { configDir, startProxy, startUpstream, viaProxy } from '../support/servers.js';

/**
 * Adding a scheme is one file: test/fixtures/hmac-scheme.ts holds its schema entry, what its
 * YAML tells the config, and its code; withSchemes registers it. Nothing else in credproxy
 * names it, and it works end to end: config check, JSON Schema, admin API, proxy.
 */
const schemes = withSchemes(SCHEMES, hmacDemo);

t.test('a scheme from one file: validated, described, stored and signed through the proxy', async (t) => {
  const up = await startUpstream((req, res) => {
    // The upstream checks the signature itself, with the secret it shares with the user.
    const auth = String(req.headers['x-demo-signature'] ?? '');
    const ok = auth === `keyId=k1,sig=${hmacSignature('sha512', 'shared-secret', req.method ?? '', req.url ?? '')}`;
    res.writeHead(ok ? 200 : 401).end(ok ? 'signed' : 'bad signature');
  });
  const yaml = [`hosts: ["127.0.0.1:${up.port}"]`, 'upstream: http', 'auth:', '  type: hmac_demo', '  header: X-Demo-Signature', '  digest: sha512'].join('\n');
  const proxy = await startProxy(configDir('store: memory\n', { demo: yaml }), { schemes });
  t.teardown(async () => {
    await proxy.close();
    await up.close();
  });

  const described = (await (await proxy.admin('GET', '/api/integrations/demo')).json()) as { schemes: Array<Record<string, unknown>> };
  t.match(described.schemes[0], { type: 'hmac_demo', needs_connection: true, connect: 'put', connect_link: true, fields: [{ name: 'key_id', secret: false }, { name: 'secret', secret: true }] });

  const missing = await viaProxy(proxy.port, `${up.origin}/v1/items?x=1`, { headers: { 'X-Entity-Id': 'alice' } });
  t.equal(missing.status, 424, 'no connection yet: connection_missing');
  t.equal((await proxy.connect('alice', 'demo', { credentials: { key_id: 'k1', secret: 'x', extra: 'y' } })).status, 400, 'its own accept refuses unknown fields');
  t.equal((await proxy.connect('alice', 'demo', { credentials: { key_id: 'k1', secret: 'shared-secret' } })).status, 200);

  const r = await viaProxy(proxy.port, `${up.origin}/v1/items?x=1`, { headers: { 'X-Entity-Id': 'alice', 'X-Demo-Signature': 'forged' } });
  t.equal(r.status, 200, 'the upstream verified the signature');
  t.equal(r.body.toString(), 'signed');
  t.equal(up.seen.at(-1)!.rawHeaders.filter((h) => h.toLowerCase() === 'x-demo-signature').length, 1, "the client's copy was replaced, not sent alongside");
  t.notMatch(proxy.logs.text, /shared-secret/, 'the secret never reaches the log');
});

t.test("the scheme's spec is its schema entry: config errors at their line, and the JSON Schema", async (t) => {
  const bad = configDir('store: memory\n', { demo: 'hosts: [a.example]\nauth:\n  type: hmac_demo\n  digest: md5\n  token_url: https://x\n' });
  const err = t.throws(() => loadConfig(bad, { env: {}, schemes })) as ConfigError;
  t.match(err.message, /demo\.yaml:4: auth\.digest: "md5" is not allowed; expected one of sha256, sha512/);
  t.match(err.message, /demo\.yaml:5: auth\.token_url: unknown key/);
  t.match(err.message, /demo\.yaml:3: auth\.header: is required/);

  const good = configDir('store: memory\n', { demo: 'hosts: [a.example]\nauth: { type: hmac_demo, header: X-Sig }\n' });
  t.equal(loadConfig(good, { env: {}, schemes }).integrations.get('demo')!.schemes[0]!.traits.signs, true);
  const unknown = t.throws(() => loadConfig(good, { env: {} })) as ConfigError;
  t.match(unknown.message, /auth\.type: "hmac_demo" is not allowed; expected one of oauth2, .*aws_sigv4/, 'without it registered, the type is unknown');

  const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false, allowUnionTypes: true });
  const withDemo = ajv.compile(integrationJsonSchema(schemes));
  t.ok(withDemo({ hosts: ['a.example'], auth: { type: 'hmac_demo', header: 'X-Sig', digest: 'sha256' } }), JSON.stringify(withDemo.errors));
  t.notOk(withDemo({ hosts: ['a.example'], auth: { type: 'hmac_demo' } }), 'header is required');
  t.notOk(withDemo({ hosts: ['a.example'], auth: { type: 'hmac_demo', header: 'X-Sig', client_id: 'c' } }), 'a key of another scheme');
  const builtIn = new Ajv({ allErrors: true, strict: true, strictRequired: false, allowUnionTypes: true }).compile(integrationJsonSchema(SCHEMES));
  t.notOk(builtIn({ hosts: ['a.example'], auth: { type: 'hmac_demo', header: 'X-Sig' } }), 'not in the built-in schema');
});
