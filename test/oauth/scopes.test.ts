import t from 'tap';
import type { Test } from 'tap';
import { OAuthServer, protectedHandler, type OAuthServerOptions } from '../support/oauth-server.js';
import { oauthIntegration } from '../support/oauth-config.js';
import { configDir, errorOf, startProxy, startUpstream, viaProxy, type TestProxy, type Upstream } from '../support/servers.js';
import { connectInBrowser } from '../support/browser.js';

/**
 * Scopes: the integration's `scopes` are the default; a connect link may ask for others
 * (within `allowed_scopes`); what the provider granted is stored and shown; a connection
 * lacking a `required_scopes` entry is answered 424 before anything is sent.
 */

const SCOPES = '  scopes: [read]\n  allowed_scopes: [read, write, admin]\n  required_scopes: [read]\n';

async function setup(t: Test, asOpts: OAuthServerOptions = {}, extra = SCOPES): Promise<{ as: OAuthServer; api: Upstream; proxy: TestProxy }> {
  const as = await new OAuthServer(asOpts).start();
  const api = await startUpstream(protectedHandler(as));
  const proxy = await startProxy(configDir('store: memory\n', { demo: oauthIntegration(as, api.port, extra) }));
  t.teardown(async () => {
    await proxy.close();
    await Promise.all([as.close(), api.close()]);
  });
  return { as, api, proxy };
}

/** Asks for a link with this body and follows it through the provider and the callback. */
async function connect(proxy: TestProxy, body: unknown, entity = 'alice'): Promise<{ status: number }> {
  const r = await proxy.admin('POST', `/api/entities/${entity}/connections/demo/connect`, body);
  if (r.status !== 200) return r;
  const { connect_url } = (await r.json()) as { connect_url: string };
  return connectInBrowser(connect_url);
}

const view = async (proxy: TestProxy, entity = 'alice') =>
  (await (await proxy.admin('GET', `/api/entities/${entity}/connections/demo`)).json()) as { scopes: string[] | null; status: string };

t.test('default scopes, a requested subset, and the granted scopes stored and shown', async (t) => {
  const { as, api, proxy } = await setup(t);
  t.equal((await connect(proxy, {})).status, 200);
  t.equal(as.authorizeRequests.at(-1)!.get('scope'), 'read', 'the integration scopes by default');
  t.same((await view(proxy)).scopes, ['read']);

  t.equal((await connect(proxy, { scopes: ['read', 'write'] }, 'bob')).status, 200);
  t.equal(as.authorizeRequests.at(-1)!.get('scope'), 'read write', 'the link asked for its own scopes');
  t.same((await view(proxy, 'bob')).scopes, ['read', 'write'], 'granted scopes stored and shown');
  const r = await viaProxy(proxy.port, `http://127.0.0.1:${api.port}/x`, { headers: { 'X-Entity-Id': 'bob' } });
  t.equal(r.status, 200, 'a connection with its required scope is used');

  const described = (await (await proxy.admin('GET', '/api/integrations/demo')).json()) as { schemes: Array<Record<string, unknown>> };
  t.match(described.schemes[0], { type: 'oauth2', connect: 'connect_link', scopes: ['read'], allowed_scopes: ['read', 'write', 'admin'], required_scopes: ['read'] });
});

t.test('a link may ask only for allowed scopes, never without a required one', async (t) => {
  const { as, proxy } = await setup(t);
  const cases: Array<[unknown, RegExp]> = [
    [['delete'], /delete not allowed/],
    [['read', 'root', 'sudo'], /root, sudo not allowed/],
    [['write'], /leaves out read/],
    ['read write', /non-empty list/],
    [[], /non-empty list/],
    [['read write'], /non-empty list/],
    [['re"ad'], /non-empty list/],
    [['read\n'], /non-empty list/],
  ];
  for (const [scopes, message] of cases) {
    const r = await proxy.admin('POST', '/api/entities/alice/connections/demo/connect', { scopes });
    t.equal(r.status, 400, `${JSON.stringify(scopes)} → 400`);
    t.match(((await r.json()) as { error: { message: string } }).error.message, message);
  }
  t.equal(as.authorizeRequests.length, 0);
  t.equal((await proxy.admin('GET', '/api/entities/alice/connections/demo')).status, 404, 'no connection was initiated by a refused link');
});

t.test('without allowed_scopes, a link may ask for any scopes', async (t) => {
  const { as, proxy } = await setup(t, {}, '  scopes: [read]\n');
  t.equal((await connect(proxy, { scopes: ['anything:goes'] })).status, 200);
  t.equal(as.authorizeRequests.at(-1)!.get('scope'), 'anything:goes');
});

t.test('the provider grants less than asked: the stored scopes say so, and a missing required scope is 424', async (t) => {
  const { api, proxy } = await setup(t, { grantScope: (asked) => asked.split(' ').filter((s) => s !== 'read').join(' ') });
  t.equal((await connect(proxy, { scopes: ['read', 'write'] })).status, 200);
  const v = await view(proxy);
  t.same([v.status, v.scopes], ['active', ['write']]);
  const before = api.seen.length;
  const e = errorOf(await viaProxy(proxy.port, `http://127.0.0.1:${api.port}/x`, { headers: { 'X-Entity-Id': 'alice' } }));
  t.same([e.status, e.code, e.header], [424, 'connection_missing', 'connection_missing']);
  t.match(e.message, /lacks the required scope read/);
  t.match(e.message, /granted: write/);
  t.match(e.message, /POST \/api\/entities\/alice\/connections\/demo\/connect/);
  t.equal(api.seen.length, before, 'nothing was forwarded');
});

t.test('a token response without scope granted what was asked (RFC 6749 §5.1)', async (t) => {
  const { proxy } = await setup(t, { grantScope: () => undefined });
  t.equal((await connect(proxy, { scopes: ['read', 'admin'] })).status, 200);
  t.same((await view(proxy)).scopes, ['read', 'admin']);
});

t.test('a stored token set without required scope is 424; one that records no scopes is let through', async (t) => {
  const { as, api, proxy } = await setup(t);
  t.equal((await proxy.connect('carol', 'demo', { credentials: { ...as.issue(), scope: 'write' } })).status, 200);
  const e = errorOf(await viaProxy(proxy.port, `http://127.0.0.1:${api.port}/x`, { headers: { 'X-Entity-Id': 'carol' } }));
  t.same([e.status, e.code], [424, 'connection_missing']);
  t.equal((await proxy.connect('dave', 'demo', { credentials: as.issue() })).status, 200);
  t.equal((await viaProxy(proxy.port, `http://127.0.0.1:${api.port}/x`, { headers: { 'X-Entity-Id': 'dave' } })).status, 200);
});
