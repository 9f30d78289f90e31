import type { IncomingMessage, ServerResponse } from 'node:http';
import t, { type Test } from 'tap';
import { ConfigError, loadConfig } from '../support/config.js';
import { configDir, startProxy, startUpstream, viaProxy, type TestProxy } from '../support/servers.js';
import { verifySigV4 } from '../support/sigv4-verify.js';

const GOOD = 'sk-good-0123456789';
const BAD = 'sk-wrong-9876543210';

/** An LLM-like API: /v1/models answers 200 for the one key it knows, 401 otherwise; `status` overrides. */
function modelsApi(key: string, opts: { status?: () => number | undefined } = {}) {
  return (req: IncomingMessage, res: ServerResponse) => {
    const forced = opts.status?.();
    if (forced !== undefined) return void res.writeHead(forced).end();
    const url = new URL(req.url ?? '/', 'http://x');
    const given = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? url.searchParams.get('key');
    if (given !== key) {
      // Some providers echo the key they got: it must not reach the admin answer.
      res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: `Incorrect API key provided: ${given}` }));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ data: [{ id: 'model-1' }] }));
  };
}

const llm = (port: number, extra = 'verify: { method: GET, path: /v1/models, expect: [200] }\n') =>
  `hosts: ["127.0.0.1:${port}"]\nupstream: http\nauth: { type: api_key }\n${extra}`;

async function start(t: Test, integrations: Record<string, string>): Promise<TestProxy> {
  const proxy = await startProxy(configDir('store: memory\n', integrations));
  t.teardown(() => proxy.close());
  return proxy;
}

type Answer = { verification?: { ok: boolean; status: number | null; message: string }; error?: { code: string; message: string }; status?: string };

t.test('a good key is verified and stored; a wrong one is refused with the upstream status and replaces nothing', async (t) => {
  const up = await startUpstream(modelsApi(GOOD));
  t.teardown(() => up.close());
  const proxy = await start(t, { llm: llm(up.port) });

  const good = await proxy.connect('alice', 'llm', { credentials: { api_key: GOOD } });
  t.equal(good.status, 200);
  const g = (await good.json()) as Answer;
  t.same(g.verification, { ok: true, status: 200, message: `GET http://127.0.0.1:${up.port}/v1/models answered 200` });
  t.equal(g.status, 'active');
  t.equal(up.seen.length, 1, 'one verification request');
  const sent = up.seen[0]!;
  t.equal(sent.method, 'GET');
  t.equal(sent.url, '/v1/models');
  t.equal(sent.headers.authorization, `Bearer ${GOOD}`, 'injected as a proxied request would be');
  t.equal(sent.headers['x-entity-id'], undefined);
  t.equal(sent.headers['user-agent'], 'credproxy-verify');

  const bad = await proxy.connect('alice', 'llm', { credentials: { api_key: BAD } });
  t.equal(bad.status, 400);
  t.equal(bad.headers.get('x-credproxy-error'), 'bad_request');
  const text = await bad.text();
  t.notMatch(text, BAD, 'the wrong key is not echoed back, even though the upstream did');
  const b = JSON.parse(text) as Answer;
  t.equal(b.error?.code, 'bad_request');
  t.match(b.error?.message, /verification failed: GET http:\/\/127\.0\.0\.1:\d+\/v1\/models answered 401 \(expected 200\).*nothing was stored/);
  t.same(b.verification, { ok: false, status: 401, message: b.verification?.message });
  t.equal(up.seen.at(-1)!.headers.authorization, `Bearer ${BAD}`);

  // The working connection is untouched: the next proxied request still uses the good key.
  const r = await viaProxy(proxy.port, `${up.origin}/v1/models`, { headers: { 'X-Entity-Id': 'alice' } });
  t.equal(r.status, 200);
  t.equal(up.seen.at(-1)!.headers.authorization, `Bearer ${GOOD}`);

  // A wrong key for an entity with no connection: none is created.
  t.equal((await proxy.connect('bob', 'llm', { credentials: { api_key: BAD } })).status, 400);
  t.equal((await proxy.admin('GET', '/api/entities/bob/connections/llm')).status, 404);
  t.match(proxy.logs.text, /connection not stored: verification failed/);
  t.notMatch(proxy.logs.text, BAD, 'nor logged');
});

t.test('a key injected into the query: verified the same way, and never named in the answer', async (t) => {
  const up = await startUpstream(modelsApi(GOOD));
  t.teardown(() => up.close());
  const proxy = await start(t, { q: llm(up.port, 'inject: { query: { key: "{{api_key}}" } }\nverify: { path: "/v1/models?limit=1" }\n') });
  const good = (await (await proxy.connect('alice', 'q', { credentials: { api_key: GOOD } })).json()) as Answer;
  t.equal(good.verification?.ok, true, 'expect defaults to any 2xx');
  t.equal(up.seen[0]!.url, `/v1/models?limit=1&key=${GOOD}`);
  const bad = await proxy.connect('alice', 'q', { credentials: { api_key: BAD } });
  t.equal(bad.status, 400);
  const text = await bad.text();
  t.notMatch(text, BAD);
  t.match(text, /v1\/models\?limit=1 answered 401 \(expected 2xx\)/);
});

t.test('answers that say nothing about the key: stored, with ok false and why', async (t) => {
  let forced: number | undefined = 503;
  const up = await startUpstream(modelsApi(GOOD, { status: () => forced }));
  t.teardown(() => up.close());
  const gone = await startUpstream();
  const gonePort = gone.port;
  await gone.close();
  const proxy = await start(t, { llm: llm(up.port), down: llm(gonePort) });

  for (const status of [503, 429]) {
    forced = status;
    const r = await proxy.connect('alice', 'llm', { credentials: { api_key: BAD } });
    t.equal(r.status, 200, `${status}: stored`);
    const a = (await r.json()) as Answer;
    t.equal(a.verification?.ok, false);
    t.equal(a.verification?.status, status);
    t.match(a.verification?.message, new RegExp(`answered ${status} \\(expected 200\\), which says nothing about the credentials; stored without verification`));
  }
  t.equal((await proxy.admin('GET', '/api/entities/alice/connections/llm')).status, 200);

  const down = await proxy.connect('alice', 'down', { credentials: { api_key: GOOD } });
  t.equal(down.status, 200);
  const d = (await down.json()) as Answer;
  t.same({ ok: d.verification?.ok, status: d.verification?.status }, { ok: false, status: null });
  t.match(d.verification?.message, /got no answer \(ECONNREFUSED\); stored without verification/);
});

t.test('an OAuth token set refused with a refresh_on status is stored: the refresh token may still cure it', async (t) => {
  const up = await startUpstream((_q, res) => res.writeHead(401).end());
  t.teardown(() => up.close());
  const proxy = await start(t, {
    o: [
      `hosts: ["127.0.0.1:${up.port}"]`,
      'upstream: http',
      'auth: { type: oauth2, authorize_url: "https://as.test/authorize", token_url: "https://as.test/token", client_id: c, client_secret: s }',
      'verify: { path: /me }',
      '',
    ].join('\n'),
  });
  const withRefresh = await proxy.connect('alice', 'o', { credentials: { access_token: 'at-old', refresh_token: 'rt-1', expires_in: 10 } });
  t.equal(withRefresh.status, 200);
  t.match(((await withRefresh.json()) as Answer).verification, { ok: false, status: 401, message: /will be refreshed on first use/ });
  const without = await proxy.connect('bob', 'o', { credentials: { access_token: 'at-dead' } });
  t.equal(without.status, 400, 'nothing to refresh with: the token is simply wrong');
});

t.test('a host template: the verification goes to the host the connection\'s params name', async (t) => {
  // 127.0.0.2 and 127.0.0.3 stand in for two tenants' hosts (see host-templates.test.ts).
  const two = await startUpstream(modelsApi(GOOD), { host: '127.0.0.2' });
  const three = await startUpstream(modelsApi(BAD), { host: '127.0.0.3', port: two.port });
  t.teardown(() => Promise.all([two.close(), three.close()]));
  const proxy = await start(t, {
    tenant: `hosts: ["127.0.0.{{tenant}}:${two.port}"]\nupstream: http\nparams: [{ name: tenant, pattern: "^[23]$" }]\nauth: { type: api_key }\nverify: { path: /v1/models }\n`,
  });
  const ok = await proxy.connect('alice', 'tenant', { params: { tenant: '2' }, credentials: { api_key: GOOD } });
  t.equal(ok.status, 200);
  t.equal(((await ok.json()) as Answer).verification?.ok, true);
  t.equal(two.seen.length, 1);
  t.equal(three.seen.length, 0);
  // A key that tenant 3 would accept is refused for tenant 2: it was checked where it will be used.
  const wrongTenant = await proxy.connect('bob', 'tenant', { params: { tenant: '2' }, credentials: { api_key: BAD } });
  t.equal(wrongTenant.status, 400);
  t.equal(three.seen.length, 0);
  t.equal(two.seen.at(-1)!.headers.host, `127.0.0.2:${two.port}`);
});

t.test('an integration without verify stores as before, with no verification in the answer', async (t) => {
  const up = await startUpstream(modelsApi(GOOD));
  t.teardown(() => up.close());
  const proxy = await start(t, { plain: llm(up.port, '') });
  const r = await proxy.connect('alice', 'plain', { credentials: { api_key: BAD } });
  t.equal(r.status, 200);
  t.equal(((await r.json()) as Answer).verification, undefined);
  t.equal(up.seen.length, 0);
});

t.test('verify is checked when the config loads: it may only go where the integration sends credentials', async (t) => {
  const problems = (yaml: string) => {
    try {
      loadConfig(configDir('store: memory\n', { x: yaml }), { env: {} });
      return '';
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      return err.message;
    }
  };
  const base = 'auth: { type: bearer }\n';
  t.equal(problems(`hosts: [api.x.test]\n${base}verify: { path: /v1/models, method: HEAD, expect: [200, 204] }\n`), '');
  t.equal(problems(`hosts: ["*.x.test"]\n${base}verify: { path: /v1, host: eu.x.test }\n`), '', 'a concrete host under a wildcard');
  t.match(problems(`hosts: [api.x.test]\npaths: [/v2]\n${base}verify: { path: /v1/models }\n`), /x\.yaml:\d+: verify\.path: \/v1\/models is not under the integration's paths \(\/v2\)/);
  t.match(problems(`hosts: ["*.x.test"]\n${base}verify: { path: /v1 }\n`), /verify\.host: every hosts entry is a wildcard/);
  t.match(problems(`hosts: [api.x.test]\n${base}verify: { path: /v1, host: evil.test }\n`), /verify\.host: "evil\.test" is not one of the integration's hosts/);
  t.match(problems(`hosts: ["*.x.test"]\n${base}verify: { path: /v1, host: "*.x.test" }\n`), /verify\.host: a wildcard names no host/);
  t.match(problems(`hosts: [api.x.test]\n${base}verify: { path: /v1, host: "api.x.test:8443" }\n`), /is not one of the integration's hosts/, 'another port is another host');
  t.match(problems(`hosts: [api.x.test]\n${base}verify: { path: v1 }\n`), /verify\.path/);
  t.match(problems(`hosts: [api.x.test]\n${base}verify: { path: /v1, method: DELETE }\n`), /verify\.method/);
  t.match(problems(`hosts: [api.x.test]\n${base}verify: { path: /v1, expect: [] }\n`), /verify\.expect/);
  t.match(problems(`hosts: [api.x.test]\n${base}verify: { method: GET }\n`), /verify.*path/);
  t.match(problems(`hosts: [api.x.test]\n${base}verify: { path: /v1, body: x }\n`), /verify.*body/);
});

t.test('a signing scheme (aws_sigv4): the verification request is signed like a proxied one', async (t) => {
  const secrets = { AKIDRIGHT: 'right-secret-0123456789' };
  const up = await startUpstream((req, res, body) => {
    const problem = verifySigV4({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body }, secrets);
    res.writeHead(problem === undefined ? 200 : 403).end();
  });
  t.teardown(() => up.close());
  const proxy = await start(t, { aws: `hosts: ["127.0.0.1:${up.port}"]\nupstream: http\nauth: { type: aws_sigv4, region: eu-west-1, service: sts }\nverify: { method: POST, path: "/?Action=GetCallerIdentity&Version=2011-06-15" }\n` });
  const good = await proxy.connect('alice', 'aws', { credentials: { access_key_id: 'AKIDRIGHT', secret_access_key: secrets.AKIDRIGHT } });
  t.equal(good.status, 200);
  t.equal(((await good.json()) as Answer).verification?.ok, true, 'the upstream checked the signature independently');
  t.equal(up.seen[0]!.method, 'POST');
  const bad = await proxy.connect('alice', 'aws', { credentials: { access_key_id: 'AKIDRIGHT', secret_access_key: 'wrong-secret' } });
  t.equal(bad.status, 400);
  t.equal(((await bad.json()) as Answer).verification?.status, 403);
  t.notMatch(JSON.stringify(up.seen.map((s) => s.headers)), /right-secret|wrong-secret/, 'the secret itself never travels');
});
