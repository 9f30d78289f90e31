import { jwtVerify, type JWTPayload } from 'jose';
import t from 'tap';
import { configDir, startProxy, startUpstream, viaProxy } from '../support/servers.js';
import { testKey } from '../support/keys.js';

const SA = 'robot@project.iam.gserviceaccount.com';

t.test('jwt_bearer (RFC 7523, Google service-account style): the token server verifies the assertion; tokens are cached per entity', async (t) => {
  const key = testKey('RS256');
  const assertions: JWTPayload[] = [];
  let issued = 0;
  let failNext = false;
  const tokens = await startUpstream((_req, res, body) => {
    void (async () => {
      const form = new URLSearchParams(body.toString('utf8'));
      if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer' || _req.headers['content-type'] !== 'application/x-www-form-urlencoded') {
        res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'unsupported_grant_type' }));
        return;
      }
      try {
        const { payload, protectedHeader } = await jwtVerify(form.get('assertion') ?? '', key.verifyKey, {
          algorithms: ['RS256'],
          issuer: SA,
          audience: tokens.origin + '/token',
        });
        if (protectedHeader.kid !== 'sa-key-1') throw new Error('kid');
        assertions.push(payload);
      } catch {
        res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'invalid_grant', error_description: 'Invalid JWT Signature.' }));
        return;
      }
      if (failNext) {
        failNext = false;
        res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'invalid_grant', error_description: 'Not a valid email or user ID.' }));
        return;
      }
      issued++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: `ya29.token-${issued}`, expires_in: 3599, token_type: 'Bearer' }));
    })();
  });
  let refuse = false;
  const up = await startUpstream((_req, res) => {
    res.writeHead(refuse ? 401 : 200).end();
    refuse = false;
  });
  const dir = configDir('store: memory\n', {
    google: [
      `hosts: ["127.0.0.1:${up.port}"]`,
      'upstream: http',
      'auth:',
      '  type: jwt_bearer',
      '  algorithm: RS256',
      '  private_key: ${SA_KEY}',
      '  key_id: sa-key-1',
      `  claims: { iss: "${SA}", sub: "{{entity}}" }`,
      `  token_url: ${'${TOKEN_ORIGIN}'}/token`,
      '  scopes: [https://www.googleapis.com/auth/drive.readonly, https://www.googleapis.com/auth/calendar]',
      '',
    ].join('\n'),
  });
  const proxy = await startProxy(dir, { env: { SA_KEY: key.privateText, TOKEN_ORIGIN: tokens.origin } });
  t.teardown(async () => {
    await proxy.close();
    await up.close();
    await tokens.close();
  });
  const send = (entity: string) => viaProxy(proxy.port, `${up.origin}/drive/v3/files`, { headers: { 'X-Entity-Id': entity } });

  t.equal((await send('alice@example.com')).status, 200);
  t.equal(up.seen[0]!.headers.authorization, 'Bearer ya29.token-1');
  const a = assertions[0]!;
  t.equal(a.sub, 'alice@example.com', 'sub = entity (domain-wide delegation)');
  t.equal(a.scope, 'https://www.googleapis.com/auth/drive.readonly https://www.googleapis.com/auth/calendar');
  t.equal(a.exp! - a.iat!, 3600, 'the assertion lives an hour by default');

  t.equal((await send('alice@example.com')).status, 200);
  t.equal(up.seen[1]!.headers.authorization, 'Bearer ya29.token-1', 'the access token is reused');
  t.equal(issued, 1);

  // Concurrent first requests of one entity share one exchange (single-flight).
  const burst = await Promise.all([1, 2, 3, 4, 5].map(() => send('bob@example.com')));
  t.same(burst.map((r) => r.status), [200, 200, 200, 200, 200]);
  t.equal(issued, 2, 'five concurrent requests, one exchange');
  t.same(new Set(up.seen.slice(2).map((s) => s.headers.authorization)), new Set(['Bearer ya29.token-2']));

  // A 401 upstream drops the token: a new one is exchanged and the request replayed once.
  refuse = true;
  t.equal((await send('alice@example.com')).status, 200, 'replayed with a new token');
  t.equal(up.seen.at(-2)!.headers.authorization, 'Bearer ya29.token-1', 'the refused token');
  t.equal(up.seen.at(-1)!.headers.authorization, 'Bearer ya29.token-3', 'the replay carries the new one');
  t.equal((await send('alice@example.com')).status, 200);
  t.equal(up.seen.at(-1)!.headers.authorization, 'Bearer ya29.token-3', 'which is then reused');

  // The provider refuses: 502 refresh_failed with its error code (its description is only
  // logged, at debug, as token-client.ts does), and nothing is forwarded.
  failNext = true;
  const before = up.seen.length;
  const refused = await send('carol@example.com');
  t.equal(refused.status, 502);
  t.equal(refused.headers['x-credproxy-error'], 'refresh_failed');
  t.match(refused.json<{ error: { message: string } }>().error.message, /answered 400: invalid_grant$/);
  t.match(proxy.logs.text, /Not a valid email or user ID\./, 'the description is in the debug log');
  t.equal(up.seen.length, before);
  t.equal((await send('carol@example.com')).status, 200, 'a failed exchange is not cached');
  t.notMatch(proxy.logs.text, /ya29\.token/);
});

t.test('GitHub App installation tokens: a bearer-assertion exchange declared in YAML, per-entity installation', async (t) => {
  const key = testKey('RS256');
  let issued = 0;
  const seenJwts: JWTPayload[] = [];
  const github = await startUpstream((req, res) => {
    void (async () => {
      const m = /^\/app\/installations\/(\d+)\/access_tokens$/.exec(req.url ?? '');
      const auth = req.headers.authorization ?? '';
      try {
        if (!m || req.method !== 'POST' || req.headers.accept !== 'application/vnd.github+json') throw new Error('route');
        const { payload } = await jwtVerify(auth.replace(/^Bearer /, ''), key.verifyKey, { algorithms: ['RS256'], issuer: '123456' });
        // GitHub: at most 10 minutes ahead of now (iat may be in the past).
        if (payload.exp! - Date.now() / 1000 > 600) throw new Error('too long');
        seenJwts.push(payload);
      } catch {
        res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ message: 'A JSON web token could not be decoded' }));
        return;
      }
      issued++;
      const expires = new Date(Date.now() + 3600_000).toISOString().replace(/\.\d+Z$/, 'Z');
      res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ token: `ghs_inst${m[1]}_${issued}`, expires_at: expires, permissions: {} }));
    })();
  });
  const api = await startUpstream();
  const dir = configDir('store: memory\n', {
    'github-app': [
      `hosts: ["127.0.0.1:${api.port}"]`,
      'upstream: http',
      'params:',
      '  - { name: installation_id, pattern: "^[0-9]+$" }',
      'auth:',
      '  type: jwt_bearer',
      '  algorithm: RS256',
      '  private_key: ${APP_KEY}',
      '  ttl: 600',
      '  clock_skew: 60',
      '  claims: { iss: "123456" }',
      `  token_url: ${github.origin}/app/installations/{{installation_id}}/access_tokens`,
      '  token_request:',
      '    assertion: bearer',
      '    headers: { Accept: application/vnd.github+json, X-GitHub-Api-Version: "2022-11-28" }',
      '  token_response: { access_token: token, expires_at: expires_at }',
      'inject:',
      '  headers: { Authorization: "token {{access_token}}" }',
      '',
    ].join('\n'),
  });
  const proxy = await startProxy(dir, { env: { APP_KEY: key.privateText } });
  t.teardown(async () => {
    await proxy.close();
    await api.close();
    await github.close();
  });
  const none = await viaProxy(proxy.port, `${api.origin}/repos/o/r`, { headers: { 'X-Entity-Id': 'acme' } });
  t.equal(none.status, 424, 'the installation is per entity: a connection names it');
  t.equal((await proxy.connect('acme', 'github-app', { params: { installation_id: '42' }, credentials: {} })).status, 200);
  t.equal((await proxy.connect('globex', 'github-app', { params: { installation_id: '77' }, credentials: {} })).status, 200);

  for (const e of ['acme', 'acme', 'globex']) t.equal((await viaProxy(proxy.port, `${api.origin}/repos/o/r`, { headers: { 'X-Entity-Id': e } })).status, 200);
  t.same(api.seen.map((s) => s.headers.authorization), ['token ghs_inst42_1', 'token ghs_inst42_1', 'token ghs_inst77_2']);
  t.equal(issued, 2);
  t.equal(seenJwts[0]!.exp! - seenJwts[0]!.iat!, 600, 'exp − iat = ttl');
  t.ok(seenJwts[0]!.iat! <= Math.floor(Date.now() / 1000) - 60, 'iat backdated by clock_skew');
  t.equal(seenJwts[0]!.nbf, seenJwts[0]!.iat);
  t.equal(seenJwts[0]!.aud, undefined, 'no audience claim in the bearer style');
  t.equal(github.seen[0]!.headers['x-github-api-version'], '2022-11-28');
});

t.test('jwt_bearer: unreachable or garbage token endpoints are 502 refresh_failed', async (t) => {
  const key = testKey('ES256');
  const garbage = await startUpstream((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>login</html>'));
  const noToken = await startUpstream((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"token_type":"Bearer"}'));
  const dead = await startUpstream();
  const deadOrigin = dead.origin;
  await dead.close();
  const up = await startUpstream();
  const auth = (url: string) => `{ type: jwt_bearer, algorithm: ES256, private_key: "\${K}", claims: { iss: me }, token_url: "${url}" }`;
  const dir = configDir('store: memory\n', {
    a: `hosts: ["127.0.0.1:${up.port}"]\npaths: [/a]\nupstream: http\nauth: ${auth(garbage.origin + '/t')}\n`,
    b: `hosts: ["127.0.0.1:${up.port}"]\npaths: [/b]\nupstream: http\nauth: ${auth(noToken.origin + '/t?secret=x')}\n`,
    c: `hosts: ["127.0.0.1:${up.port}"]\npaths: [/c]\nupstream: http\nauth: ${auth(deadOrigin + '/t')}\n`,
  });
  const proxy = await startProxy(dir, { env: { K: key.privateText } });
  t.teardown(async () => {
    await proxy.close();
    await up.close();
    await garbage.close();
    await noToken.close();
  });
  const msg = async (path: string) => {
    const r = await viaProxy(proxy.port, `${up.origin}${path}`, { headers: { 'X-Entity-Id': 'alice' } });
    t.equal(r.status, 502);
    t.equal(r.headers['x-credproxy-error'], 'refresh_failed');
    return r.json<{ error: { message: string } }>().error.message;
  };
  t.match(await msg('/a'), /answered 200 without a JSON object/);
  const b = await msg('/b');
  t.match(b, /without a usable token at "access_token"/);
  t.notMatch(b, /secret=x/, 'the token URL query is not shown');
  t.match(await msg('/c'), /could not be reached \(ECONNREFUSED\)/);
  t.equal(up.seen.length, 0);
});

t.test('jwt_bearer: the provider’s error_description and message never reach the proxy client, and the log holds no assertion', async (t) => {
  const key = testKey('ES256');
  // Providers that echo what they were sent: the assertion, the subject (another entity's id).
  const echo = await startUpstream((_req, res, body) => {
    const assertion = new URLSearchParams(body.toString('utf8')).get('assertion') ?? '';
    res.writeHead(400, { 'content-type': 'application/json' }).end(
      JSON.stringify({ error: 'invalid_grant', error_description: `assertion ${assertion} rejected for sub alice`, message: `head ${assertion.split('.')[0]}` }),
    );
  });
  const github = await startUpstream((_req, res) => res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ message: 'installation 42 of user mallory not found' })));
  const odd = await startUpstream((_req, res) => res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'bad\r\nX-Injected: 1 <script>' })));
  const up = await startUpstream();
  const auth = (url: string) => `{ type: jwt_bearer, algorithm: ES256, private_key: "\${K}", claims: { iss: me, sub: "{{entity}}" }, token_url: "${url}" }`;
  const dir = configDir('store: memory\n', {
    a: `hosts: ["127.0.0.1:${up.port}"]\npaths: [/a]\nupstream: http\nauth: ${auth(echo.origin + '/t')}\n`,
    b: `hosts: ["127.0.0.1:${up.port}"]\npaths: [/b]\nupstream: http\nauth: ${auth(github.origin + '/t')}\n`,
    c: `hosts: ["127.0.0.1:${up.port}"]\npaths: [/c]\nupstream: http\nauth: ${auth(odd.origin + '/t')}\n`,
  });
  const proxy = await startProxy(dir, { env: { K: key.privateText } });
  t.teardown(async () => {
    await proxy.close();
    await up.close();
    await echo.close();
    await github.close();
    await odd.close();
  });
  const msg = async (path: string) => {
    const r = await viaProxy(proxy.port, `${up.origin}${path}`, { headers: { 'X-Entity-Id': 'alice' } });
    t.equal(r.status, 502);
    t.equal(r.headers['x-credproxy-error'], 'refresh_failed');
    return r.json<{ error: { message: string } }>().error.message;
  };
  const a = await msg('/a');
  t.match(a, /answered 400: invalid_grant$/);
  t.notMatch(a, /eyJ|rejected|head/);
  const b = await msg('/b');
  t.match(b, /answered 401$/);
  t.notMatch(b, /mallory|installation/);
  const c = await msg('/c');
  t.match(c, /answered 400$/, 'an error code that is not a code is not shown');
  t.notMatch(c, /Injected|script/);
  // The operator still sees why, at debug, with no piece of the assertion.
  t.match(proxy.logs.text, /rejected for sub alice/);
  t.match(proxy.logs.text, /installation 42 of user mallory not found/);
  t.notMatch(proxy.logs.text, /eyJ/, 'no assertion (nor its header) in the log');
  t.equal(up.seen.length, 0);
});
