import t, { type Test } from 'tap';
import { OAuthServer, protectedHandler } from '../support/oauth-server.js';
import { configDir, startProxy, startUpstream, viaProxy, type TestProxy, type Upstream } from '../support/servers.js';

async function setup(t: Test, client: 'yaml' | 'connection', extra = '') {
  const as = await new OAuthServer().start();
  const up = await startUpstream(protectedHandler(as));
  const yaml = [
    `hosts: ["127.0.0.1:${up.port}"]`,
    'upstream: http',
    'auth:',
    '  type: oauth2_client_credentials',
    `  token_url: ${as.origin}/token`,
    ...(client === 'yaml' ? [`  client_id: ${as.clientId}`, `  client_secret: ${as.clientSecret}`] : []),
    extra,
  ].join('\n');
  const proxy = await startProxy(configDir('store: memory\n', { cc: yaml }));
  t.teardown(async () => {
    await proxy.close();
    await Promise.all([as.close(), up.close()]);
  });
  return { as, up, proxy };
}

const get = (proxy: TestProxy, up: Upstream, entity: string, body?: string) =>
  viaProxy(proxy.port, `${up.origin}/v1`, { method: body ? 'POST' : 'GET', headers: { 'X-Entity-Id': entity }, body });

t.test('client in the YAML: one token per integration shared by entities, no connection needed', async (t) => {
  const { as, up, proxy } = await setup(t, 'yaml', '  scopes: [a, b]');
  const [a, b] = await Promise.all([get(proxy, up, 'alice'), get(proxy, up, 'bob')]);
  t.equal(a.status, 200);
  t.equal(b.status, 200);
  t.equal(as.count('client_credentials'), 1, 'one token request for both');
  t.equal(as.calls[0]!.params.scope, 'a b');
  t.equal(a.json<{ token: string }>().token, b.json<{ token: string }>().token);
  t.equal((await get(proxy, up, 'carol')).status, 200);
  t.equal(as.count(), 1, 'cached until expiry');

  // Refused upstream: a new token, and the request replayed.
  as.revokeAccess(a.json<{ token: string }>().token);
  const r = await get(proxy, up, 'alice', 'payload');
  t.equal(r.status, 200);
  t.equal(as.count('client_credentials'), 2);
  t.equal(up.seen.at(-1)!.body.toString(), 'payload');
  t.notMatch(proxy.logs.text, new RegExp(as.clientSecret));
});

t.test('a token that expires soon is fetched again before use', async (t) => {
  const { as, up, proxy } = await setup(t, 'yaml');
  as.expiresIn = 30;
  t.equal((await get(proxy, up, 'alice')).status, 200);
  t.equal((await get(proxy, up, 'alice')).status, 200);
  t.equal(as.count(), 2, 'a 30 s token is within the 60 s margin');
});

t.test('client per connection: the connection supplies client_id/client_secret', async (t) => {
  const { as, up, proxy } = await setup(t, 'connection');
  t.equal((await get(proxy, up, 'alice')).status, 424, 'no connection: connection_missing');
  const put = await proxy.connect('alice', 'cc', { credentials: { client_id: as.clientId, client_secret: as.clientSecret } });
  t.equal(put.status, 200);
  t.equal((await get(proxy, up, 'alice')).status, 200);
  t.equal(as.calls[0]!.auth, 'basic');

  await proxy.connect('bob', 'cc', { credentials: { client_id: as.clientId, client_secret: 'wrong' } });
  const r = await get(proxy, up, 'bob');
  t.equal(r.status, 424);
  t.equal(r.headers['x-credproxy-error'], 'connection_expired');
  const c = (await (await proxy.admin('GET', '/api/entities/bob/connections/cc')).json()) as { status: string };
  t.equal(c.status, 'expired');
  t.equal((await get(proxy, up, 'alice')).status, 200, 'alice keeps her own token');
});

t.test('token endpoint failures answer 502 refresh_failed and back off', async (t) => {
  const { as, up, proxy } = await setup(t, 'yaml');
  as.tokenEndpoint = 'error500';
  const r = await get(proxy, up, 'alice');
  t.equal(r.status, 502);
  t.equal(r.headers['x-credproxy-error'], 'refresh_failed');
  t.equal((await get(proxy, up, 'alice')).status, 502);
  t.equal(as.count(), 1, 'backing off');
});

t.test('a YAML client the provider refuses is a 502, not an expired connection', async (t) => {
  const as = await new OAuthServer().start();
  const up = await startUpstream(protectedHandler(as));
  const proxy = await startProxy(
    configDir('store: memory\n', {
      cc: `hosts: ["127.0.0.1:${up.port}"]\nupstream: http\nauth: { type: oauth2_client_credentials, token_url: "${as.origin}/token", client_id: x, client_secret: y }\n`,
    }),
  );
  t.teardown(async () => {
    await proxy.close();
    await Promise.all([as.close(), up.close()]);
  });
  const r = await get(proxy, up, 'alice');
  t.equal(r.status, 502);
  t.match(r.json<{ error: { message: string } }>().error.message, /invalid_client/);
});
