import t, { type Test } from 'tap';
import { OAuthServer, protectedHandler } from '../support/oauth-server.js';
import { oauthIntegration } from '../support/oauth-config.js';
import { sqliteStore } from '../support/sqlite.js';
import { configDir, errorOf, startProxy, startUpstream, viaProxy, type TestProxy, type Upstream } from '../support/servers.js';
import { startReceiver, type Receiver } from '../support/webhook.js';
import { authorizeUrlOf, Browser, connectInBrowser } from '../support/browser.js';

/**
 * The OAuth side of labelled connections: a connect link with ?label= makes that connection
 * (the label rides the link and the OAuth state to the callback), and refreshing it spends
 * its own refresh token, never the default connection's.
 */

interface Setup {
  as: OAuthServer;
  up: Upstream;
  proxy: TestProxy;
  hook: Receiver;
}

async function setup(t: Test): Promise<Setup> {
  const as = await new OAuthServer({ rotate: true }).start();
  const up = await startUpstream(protectedHandler(as));
  const hook = await startReceiver();
  const dir = configDir(`${sqliteStore(t)}events:\n  webhook_url: ${hook.server.origin}/hooks\n  secret: whsec-labels-0123456789\n`, { demo: oauthIntegration(as, up.port, '  scopes: [read]') });
  const proxy = await startProxy(dir, { events: { baseDelayMs: 5, maxDelayMs: 20 } });
  t.teardown(async () => {
    await proxy.close();
    await Promise.all([as.close(), up.close(), hook.server.close()]);
  });
  return { as, up, proxy, hook };
}

const view = async (s: Setup, label?: string) => {
  const r = await s.proxy.admin('GET', `/api/entities/alice/connections/demo${label === undefined ? '' : `?label=${label}`}`);
  return r.status === 404 ? undefined : ((await r.json()) as { label: string | null; status: string; reason: string | null; updated_at: string });
};
const get = (s: Setup, label?: string) =>
  viaProxy(s.proxy.port, `${s.up.origin}/data`, { headers: { 'X-Entity-Id': 'alice', ...(label === undefined ? {} : { 'X-Connection-Label': label }) } });

t.test('a connect link with ?label= creates the labelled connection, through the OAuth state round trip', async (t) => {
  const s = await setup(t);
  const link = await s.proxy.admin('POST', '/api/entities/alice/connections/demo/connect?label=work', {});
  t.equal(link.status, 200);
  const { connect_url } = (await link.json()) as { connect_url: string };
  t.notMatch(connect_url, /work/, 'the label lives server-side, not in the link');
  t.match(await view(s, 'work'), { label: 'work', status: 'initiated' });
  t.equal(await view(s), undefined, 'no default connection is made');

  // The browser side of the flow: link → page → button → provider (with state) → callback.
  const browser = new Browser();
  const authorize = await authorizeUrlOf(browser, connect_url);
  const state = new URL(authorize).searchParams.get('state');
  t.ok(state, 'the provider gets a state');
  t.notMatch(authorize, /work/, 'and no label');
  const done = await browser.follow(authorize);
  t.equal(done.status, 200);
  t.match(await done.text(), /demo is connected as your &quot;work&quot; account/, 'the page says which account');

  t.match(await view(s, 'work'), { label: 'work', status: 'active' });
  t.equal(await view(s), undefined, 'still no default connection');
  const stored = await s.proxy.runtime.store.get('alice', 'demo', { label: 'work' });
  t.equal(stored?.label, 'work');
  t.ok(stored?.credentials.access_token && s.as.validAccess.has(stored.credentials.access_token));
  t.equal((await get(s, 'work')).status, 200);
  t.equal(s.up.seen.at(-1)!.headers.authorization, `Bearer ${stored!.credentials.access_token}`);
  const none = errorOf(await get(s));
  t.same([none.status, none.code], [424, 'connection_missing'], 'without the header: the default, which does not exist');

  // connection.active names the label, so an application knows which account connected.
  await s.proxy.runtime.events.settled();
  t.match(s.hook.events().find((e) => e.type === 'connection.active'), { entity: 'alice', integration: 'demo', label: 'work', status: 'active' });

  const bad = await s.proxy.admin('POST', '/api/entities/alice/connections/demo/connect?label=no%20spaces', {});
  t.equal(bad.status, 400);
  t.match(await bad.json(), { error: { code: 'bad_request', message: /label query parameter: a connection label is 1 to 64/ } });
});

t.test('a denied flow marks only the labelled connection failed', async (t) => {
  const s = await setup(t);
  t.equal((await s.proxy.connect('alice', 'demo', { credentials: { ...s.as.issue(), expires_in: 3600 } })).status, 200);
  s.as.consent = 'deny';
  const link = await s.proxy.admin('POST', '/api/entities/alice/connections/demo/connect?label=personal', {});
  const { connect_url } = (await link.json()) as { connect_url: string };
  t.equal((await connectInBrowser(connect_url)).status, 400);
  t.match(await view(s, 'personal'), { label: 'personal', status: 'failed', reason: /access_denied/ });
  t.match(await view(s), { label: null, status: 'active' }, 'the default connection is untouched');
  const e = errorOf(await get(s, 'personal'));
  t.same([e.status, e.code], [424, 'connection_missing']);
  t.match(e.message, /no usable connection labelled "personal" for integration "demo": the connect flow failed/);
});

t.test('refresh works on the labelled connection: its own refresh token, its own lock, the default untouched', async (t) => {
  const s = await setup(t);
  const main = s.as.issue();
  const work = s.as.issue();
  t.equal((await s.proxy.connect('alice', 'demo', { credentials: { ...main, expires_in: 3600 } })).status, 200);
  t.equal((await s.proxy.admin('PUT', '/api/entities/alice/connections/demo?label=work', { credentials: { ...work, expires_in: 3600 } })).status, 200);

  // The upstream refuses work's token: refresh, then replay, with work's refresh token.
  s.as.revokeAccess(work.access_token);
  const r = await get(s, 'work');
  t.equal(r.status, 200);
  t.equal(s.as.count('refresh_token'), 1);
  t.equal(s.as.calls.at(-1)!.params.refresh_token, work.refresh_token, "work's refresh token was spent");
  t.notOk(s.as.validRefresh.has(work.refresh_token), 'rotated away');
  t.ok(s.as.validRefresh.has(main.refresh_token), "the default connection's refresh token is untouched");
  const refreshed = await s.proxy.runtime.store.get('alice', 'demo', { label: 'work', fresh: true });
  t.equal(refreshed?.label, 'work', 'written back as the labelled connection');
  t.equal(r.json<{ token: string }>().token, refreshed?.credentials.access_token);
  const def = await s.proxy.runtime.store.get('alice', 'demo', { fresh: true });
  t.same(def?.credentials, { access_token: main.access_token, refresh_token: main.refresh_token }, 'the default connection was not written');
  t.equal((await get(s)).status, 200);
  t.equal(s.up.seen.at(-1)!.headers.authorization, `Bearer ${main.access_token}`);

  // work's refresh token dies: only work expires, named in the answer and the event.
  s.as.validRefresh.clear();
  s.as.validRefresh.add(main.refresh_token);
  s.as.revokeAccess(refreshed!.credentials.access_token!);
  const expired = errorOf(await get(s, 'work'));
  t.same([expired.status, expired.code], [424, 'connection_expired']);
  t.match(expired.message, /connection labelled "work" of entity "alice" to "demo" expired/);
  t.match(await view(s, 'work'), { status: 'expired' });
  t.match(await view(s), { status: 'active' });
  t.equal((await get(s)).status, 200, 'the default connection still works');
  await s.proxy.runtime.events.settled();
  t.match(s.hook.events().find((e) => e.type === 'connection.expired'), { entity: 'alice', label: 'work', status: 'expired' });
  t.notMatch(s.proxy.logs.text, new RegExp(`${work.refresh_token}|${main.refresh_token}`), 'no token in the logs');
});
