import t from 'tap';
import { OAuthServer, protectedHandler } from '../support/oauth-server.js';
import { oauthIntegration } from '../support/oauth-config.js';
import { configDir, startProxy, startUpstream, viaProxy } from '../support/servers.js';

t.test('admin PUT migrates an existing oauth2 token set', async (t) => {
  const as = await new OAuthServer().start();
  const up = await startUpstream(protectedHandler(as));
  const proxy = await startProxy(configDir('store: memory\n', { demo: oauthIntegration(as, up.port) }));
  t.teardown(async () => {
    await proxy.close();
    await Promise.all([as.close(), up.close()]);
  });
  const put = (credentials: unknown) => proxy.connect('alice', 'demo', { credentials });
  const tokens = as.issue();

  const r = await put({ ...tokens, expires_at: '2100-01-01T00:00:00Z', scope: 'a b', token_type: 'bearer' });
  t.equal(r.status, 200);
  const view = (await r.json()) as Record<string, unknown>;
  t.equal(view.status, 'active');
  t.equal(view.expires_at, '2100-01-01T00:00:00.000Z');
  t.same(view.scopes, ['a', 'b']);
  t.notMatch(JSON.stringify(view), new RegExp(tokens.access_token), 'never returned');
  t.equal((await viaProxy(proxy.port, `${up.origin}/x`, { headers: { 'X-Entity-Id': 'alice' } })).status, 200);

  t.equal(((await (await put({ access_token: 'a', expires_at: 4102444800 })).json()) as { expires_at: string }).expires_at, '2100-01-01T00:00:00.000Z', 'unix seconds');
  t.same(((await (await put({ access_token: 'a', scope: ['x'] })).json()) as { scopes: string[] }).scopes, ['x']);
  const inAnHour = Date.parse(((await (await put({ access_token: 'a', expires_in: 3600 })).json()) as { expires_at: string }).expires_at) - Date.now();
  t.ok(inAnHour > 3500_000 && inAnHour <= 3600_000);

  for (const bad of [
    {},
    { access_token: '' },
    { access_token: 'a\r\nb' },
    { access_token: 'a', refresh_token: 5 },
    { access_token: 'a', expires_in: -1 },
    { access_token: 'a', expires_in: 60, expires_at: 1 },
    { access_token: 'a', expires_at: 'tomorrow' },
    { access_token: 'a', scope: 5 },
    { access_token: 'a', password: 'x' },
  ]) {
    const res = await put(bad);
    t.equal(res.status, 400, JSON.stringify(bad));
  }
});
