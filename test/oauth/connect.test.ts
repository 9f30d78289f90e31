import t from 'tap';
import type { Test } from 'tap';
import { createLink } from '../../src/oauth/links.js';
import { Browser, callbackUrlOf, connectInBrowser } from '../support/browser.js';
import { OAuthServer } from '../support/oauth-server.js';
import { oauthIntegration } from '../support/oauth-config.js';
import { ADMIN, configDir, startProxy, startUpstream, viaProxy, type TestProxy } from '../support/servers.js';

interface Setup {
  as: OAuthServer;
  proxy: TestProxy;
  app: Awaited<ReturnType<typeof startUpstream>>;
  api: Awaited<ReturnType<typeof startUpstream>>;
}

async function setup(t: Test, extraAuth = '  scopes: [read, write]\n  authorization_params: { access_type: offline, prompt: consent, state: hijack }', asOpts = {}): Promise<Setup> {
  const as = await new OAuthServer(asOpts).start();
  const app = await startUpstream();
  const api = await startUpstream();
  const dir = configDir(`store: memory\nconnect:\n  allowed_redirects: ["http://127.0.0.1:${app.port}/done"]\n`, {
    demo: oauthIntegration(as, api.port, extraAuth),
  });
  const proxy = await startProxy(dir);
  t.teardown(async () => {
    await proxy.close();
    await Promise.all([as.close(), app.close(), api.close()]);
  });
  return { as, proxy, app, api };
}

const connectLink = (proxy: TestProxy, body: unknown = {}, entity = 'alice') => proxy.connectLink(entity, 'demo', body);


const status = (proxy: TestProxy, entity = 'alice') => proxy.connectionStatus(entity, 'demo');

t.test('full connect flow with a real client following the redirects, then the proxied request carries the token', async (t) => {
  const { as, proxy, app, api } = await setup(t);
  const redirect = `http://127.0.0.1:${app.port}/done?x=1`;
  const r = await proxy.admin('POST', '/api/entities/alice/connections/demo/connect', { redirect_to: redirect });
  t.equal(r.status, 200);
  const { connect_url, expires_at } = (await r.json()) as { connect_url: string; expires_at: string };
  t.match(connect_url, new RegExp(`^${proxy.url}/connect/demo\\?token=`));
  const ttl = Date.parse(expires_at) - Date.now();
  t.ok(ttl > 9 * 60_000 && ttl <= 10 * 60_000, 'valid 10 minutes');
  t.equal(await status(proxy), 'initiated');

  const browser = new Browser();
  const done = await connectInBrowser(connect_url, browser);
  t.equal(done.status, 200);
  t.equal(browser.url, redirect, 'ends at redirect_to');
  t.equal(app.seen.length, 1);

  const q = as.authorizeRequests[0]!;
  t.equal(q.get('client_id'), as.clientId);
  t.equal(q.get('redirect_uri'), `${proxy.url}/connect/callback`);
  t.equal(q.get('scope'), 'read write');
  t.equal(q.get('code_challenge_method'), 'S256');
  t.match(q.get('code_challenge'), /^[A-Za-z0-9_-]{43}$/);
  t.equal(q.get('access_type'), 'offline');
  t.equal(q.get('prompt'), 'consent');
  t.ok(Buffer.from(q.get('state')!, 'base64url').length >= 16, 'state has at least 128 bits');
  t.same(q.getAll('state').length, 1, 'authorization_params cannot replace the state');
  t.equal(as.count('authorization_code'), 1);
  t.equal(as.calls[0]!.auth, 'basic', 'client_secret_basic by default');

  const conn = (await (await proxy.admin('GET', '/api/entities/alice/connections/demo')).json()) as Record<string, unknown>;
  t.equal(conn.status, 'active');
  t.same(conn.fields, ['access_token', 'refresh_token']);
  t.same(conn.scopes, ['read', 'write']);
  t.ok(conn.expires_at);

  const p = await viaProxy(proxy.port, `${api.origin}/me`, { headers: { 'X-Entity-Id': 'alice' } });
  t.equal(p.status, 200);
  t.match(api.seen[0]!.headers.authorization, /^Bearer at-/);
  t.ok(as.validAccess.has(api.seen[0]!.headers.authorization!.slice(7)));

  // The link is single-use.
  const again = await fetch(connect_url, { redirect: 'manual' });
  t.equal(again.status, 400);
  t.equal(again.headers.get('x-credproxy-error'), 'bad_request');
  t.equal((await connectInBrowser(connect_url)).status, 400, 'also when its page is opened and the button pressed again');
  const logs = proxy.logs.text;
  t.notMatch(logs, /at-\d+-/, 'no access token in the logs');
  t.notMatch(logs, /rt-\d+-/, 'no refresh token in the logs');
  t.notMatch(logs, new RegExp(as.clientSecret));
});

t.test('without redirect_to the flow ends on a success page; pkce: false, client_secret_post, scope_separator, token_params, form-encoded answer', async (t) => {
  const { as, proxy } = await setup(
    t,
    '  pkce: false\n  scopes: [a, b]\n  scope_separator: ","\n  token_request_auth_method: client_secret_post\n  token_params: { audience: api }',
    { form: true, expiresIn: null },
  );
  const done = await connectInBrowser(await connectLink(proxy));
  t.equal(done.status, 200);
  t.match(done.headers.get('content-type'), /text\/html/);
  t.match(await done.text(), /demo is connected/);
  const q = as.authorizeRequests[0]!;
  t.equal(q.get('scope'), 'a,b');
  t.notOk(q.has('code_challenge'));
  t.equal(as.calls[0]!.auth, 'post');
  t.equal(as.calls[0]!.params.audience, 'api');
  t.notOk('code_verifier' in as.calls[0]!.params);
  const conn = (await (await proxy.admin('GET', '/api/entities/alice/connections/demo')).json()) as Record<string, unknown>;
  t.equal(conn.status, 'active');
  t.equal(conn.expires_at, null, 'no expires_in: no expiry');
});

t.test('state forged, missing, reused and expired: 400 and nothing stored', async (t) => {
  const { proxy } = await setup(t);
  const cb = `${proxy.url}/connect/callback`;
  const forged = await fetch(`${cb}?code=abc&state=${'A'.repeat(43)}`);
  t.equal(forged.status, 400);
  t.equal(forged.headers.get('x-credproxy-error'), 'bad_request');
  t.equal(((await forged.json()) as { error: { code: string } }).error.code, 'bad_request');
  t.equal((await fetch(`${cb}?code=abc`)).status, 400, 'missing state');
  t.equal((await fetch(`${cb}?code=abc&state=%3Cscript%3E`)).status, 400, 'malformed state');
  t.equal(await status(proxy), 'none');

  const browser = new Browser();
  const url = await callbackUrlOf(await connectLink(proxy), browser);
  t.equal((await browser.request(url)).status, 200);
  const reused = await browser.request(url);
  t.equal(reused.status, 400, 'reused');
  t.match(reused.headers.get('content-type'), /text\/html/, 'a browser gets a page');
  t.match(await reused.text(), /already used/);

  // A state recorded eleven minutes ago (written straight to the store) is expired.
  await proxy.runtime.store.kv.set(
    'state:' + 'B'.repeat(43),
    JSON.stringify({ entity: 'bob', integration: 'demo', params: {}, verifier: 'v'.repeat(43), created_at: Date.now() - 11 * 60_000 }),
  );
  t.equal((await fetch(`${cb}?code=abc&state=${'B'.repeat(43)}`)).status, 400, 'expired');
  t.equal(await status(proxy, 'bob'), 'none');
});

t.test('denied consent marks the connection failed and shows an escaped page', async (t) => {
  const { as, proxy, api } = await setup(t);
  as.consent = 'deny';
  const r = await connectInBrowser(await connectLink(proxy));
  t.equal(r.status, 400);
  const html = await r.text();
  t.match(html, /access_denied/);
  t.match(html, /&lt;no&gt; &amp; left/);
  t.notMatch(html, /<no>/);
  const conn = (await (await proxy.admin('GET', '/api/entities/alice/connections/demo')).json()) as Record<string, unknown>;
  t.equal(conn.status, 'failed');
  t.match(conn.reason, /access_denied/);
  t.equal(as.count(), 0, 'no code exchange');
  const p = await viaProxy(proxy.port, `${api.origin}/me`, { headers: { 'X-Entity-Id': 'alice' } });
  t.equal(p.status, 424);
  t.equal(p.headers['x-credproxy-error'], 'connection_missing');
  t.match(p.json<{ error: { message: string } }>().error.message, /failed/);
});

t.test('a failed code exchange marks the connection failed', async (t) => {
  const { as, proxy } = await setup(t);
  as.tokenEndpoint = 'error500';
  const r = await connectInBrowser(await connectLink(proxy));
  t.equal(r.status, 502);
  t.match(await r.text(), /token exchange failed/);
  t.equal(await status(proxy), 'failed');
});

t.test('RFC 9207: a declared issuer must match the callback iss', async (t) => {
  t.test('mismatch', async (t) => {
    const { proxy, as } = await setup(t, '  issuer: https://good.example', { iss: 'https://evil.example' });
    const r = await connectInBrowser(await connectLink(proxy));
    t.equal(r.status, 400);
    t.equal(await status(proxy), 'failed');
    t.equal(as.count(), 0);
  });
  t.test('match', async (t) => {
    const { proxy } = await setup(t, '  issuer: https://good.example', { iss: 'https://good.example' });
    t.equal((await connectInBrowser(await connectLink(proxy))).status, 200);
    t.equal(await status(proxy), 'active');
  });
  t.test('no issuer declared: iss is ignored', async (t) => {
    const { proxy } = await setup(t, '', { iss: 'https://whoever.example' });
    t.equal((await connectInBrowser(await connectLink(proxy))).status, 200);
    t.equal(await status(proxy), 'active');
  });
});

t.test('connect link requests: redirect_to allow-list, bad bodies, wrong integrations, forged links', async (t) => {
  const { proxy, app } = await setup(t);
  const post = (body: unknown, path = '/api/entities/alice/connections/demo/connect') => proxy.admin('POST', path, body);
  for (const bad of ['https://evil.example/done', `http://127.0.0.1:${app.port}/other`, `http://127.0.0.1:${app.port}/donex`, `http://u:p@127.0.0.1:${app.port}/done`, 'not a url', 42]) {
    const r = await post({ redirect_to: bad });
    t.equal(r.status, 400, `refused: ${bad}`);
  }
  t.equal(await status(proxy), 'none', 'a refused request changes nothing');
  t.equal((await post({ redirect_to: `http://127.0.0.1:${app.port}/done/sub` })).status, 200);
  t.equal((await post({ nope: 1 })).status, 400);
  t.equal((await post({}, '/api/entities/alice/connections/nothere/connect')).status, 404);
  t.equal((await post({}, '/api/entities/bad%20id/connections/demo/connect')).status, 400);
  const noAdmin = await fetch(`${proxy.url}/api/entities/alice/connections/demo/connect`, { method: 'POST' });
  t.equal(noAdmin.status, 401);

  const link = new URL(await connectLink(proxy));
  t.equal((await fetch(link, { method: 'HEAD' })).status, 200, 'HEAD (a link preview) does not use the link up');
  t.equal((await fetch(`${proxy.url}/connect/demo`, { redirect: 'manual' })).status, 400, 'no token');
  t.equal((await fetch(`${proxy.url}/connect/demo?token=abc.def.ghi`, { redirect: 'manual' })).status, 400, 'forged');
  const tampered = link.searchParams.get('token')!.slice(0, -2) + 'xx';
  t.equal((await fetch(`${proxy.url}/connect/demo?token=${tampered}`, { redirect: 'manual' })).status, 400, 'tampered');
  t.equal((await fetch(`${proxy.url}/connect/nothere?${link.searchParams}`, { redirect: 'manual' })).status, 404);
  t.equal((await fetch(link, { redirect: 'manual' })).status, 200, 'the real link still shows its page');
  t.equal((await connectInBrowser(link.href)).status, 200, 'and still works once');
  t.ok(ADMIN);
});

t.test('an active connection stays active while it is re-connected, and a failed re-connect keeps it', async (t) => {
  const { as, proxy } = await setup(t);
  await connectInBrowser(await connectLink(proxy));
  t.equal(await status(proxy), 'active');
  const link = await connectLink(proxy);
  t.equal(await status(proxy), 'active');
  as.consent = 'deny';
  t.equal((await connectInBrowser(link)).status, 400);
  t.equal(await status(proxy), 'active');
});

t.test('a connect link needs a scheme a user can connect: oauth2, or one with fields (issue 17)', async (t) => {
  const shared = 'hosts: ["127.0.0.1:1"]\nupstream: http\nauth: { type: oauth2_client_credentials, token_url: "http://127.0.0.1:1/token", client_id: a, client_secret: b }\n';
  const dir = configDir('store: memory\n', { tok: 'hosts: ["127.0.0.1:2"]\nupstream: http\nauth: { type: bearer }\n', shared });
  const proxy = await startProxy(dir);
  t.teardown(() => proxy.close());
  const none = await proxy.admin('POST', '/api/entities/alice/connections/shared/connect', {});
  t.equal(none.status, 400, 'one token for every entity: nothing for a user to connect');
  t.match(await none.text(), /no scheme a user can connect/);
  const bearer = await proxy.admin('POST', '/api/entities/alice/connections/tok/connect', {});
  t.equal(bearer.status, 200, 'a bearer token is typed into the connect page');
  const unknown = await proxy.admin('POST', '/api/entities/alice/connections/tok/connect', { scheme: 'basic' });
  t.equal(unknown.status, 400);
  t.match(await unknown.text(), /has no scheme \\"basic\\"; it offers bearer/);
});

t.test('an expired connect link and a callback without a code', async (t) => {
  const { proxy } = await setup(t);
  const old = await createLink(proxy.runtime.store.kv, proxy.runtime.adminToken, { entity: 'alice', integration: 'demo', params: {} }, Date.now() - 11 * 60_000);
  const r = await fetch(`${proxy.url}/connect/demo?token=${old.token}`, { redirect: 'manual', headers: { accept: 'text/html' } });
  t.equal(r.status, 400);
  t.match(await r.text(), /has expired/);

  const browser = new Browser();
  const cb = new URL(await callbackUrlOf(await connectLink(proxy), browser));
  cb.searchParams.delete('code');
  const noCode = await browser.request(cb.href);
  t.equal(noCode.status, 400);
  t.match(await noCode.text(), /no authorization code/);
  t.equal(await status(proxy), 'failed');
});
