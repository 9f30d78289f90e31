import t from 'tap';
import { OAuthServer } from '../support/oauth-server.js';
import { configDir, startProxy, startUpstream } from '../support/servers.js';
import { connectInBrowser } from '../support/browser.js';

/** Connection params fill the oauth2 URLs of a connect flow, percent-encoded, and are stored with the connection. */
t.test('params in authorize_url and token_url: filled from the link, encoded, kept on the connection', async (t) => {
  const as = await new OAuthServer().start();
  const api = await startUpstream();
  const dir = configDir('store: memory\n', {
    demo: [
      `hosts: ["127.0.0.1:${api.port}"]`,
      'upstream: http',
      'params: [{ name: tenant, description: "the account" }, { name: region, default: eu }]',
      'auth:',
      '  type: oauth2',
      `  authorize_url: "${as.origin}/authorize?tenant={{tenant}}&region={{region}}"`,
      `  token_url: "${as.origin}/token?tenant={{tenant}}"`,
      `  client_id: ${as.clientId}`,
      `  client_secret: ${as.clientSecret}`,
      '',
    ].join('\n'),
  });
  const proxy = await startProxy(dir);
  t.teardown(async () => {
    await proxy.close();
    await Promise.all([as.close(), api.close()]);
  });
  const r = await proxy.admin('POST', '/api/entities/alice/connections/demo/connect', { params: { tenant: 'a&x=1/../b' } });
  t.equal(r.status, 200);
  t.equal((await connectInBrowser(((await r.json()) as { connect_url: string }).connect_url)).status, 200, 'the flow completed (the token_url with params worked)');
  const q = as.authorizeRequests.at(-1)!;
  t.equal(q.get('tenant'), 'a&x=1/../b', 'the value arrived whole, encoded');
  t.equal(q.get('x'), null, 'it added no query parameter');
  t.equal(q.get('region'), 'eu', 'the default filled in');
  const c = (await (await proxy.admin('GET', '/api/entities/alice/connections/demo')).json()) as { params: Record<string, string>; status: string };
  t.same([c.status, c.params], ['active', { tenant: 'a&x=1/../b', region: 'eu' }]);
});
