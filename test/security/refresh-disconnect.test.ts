import http from 'node:http';
import type { Socket } from 'node:net';
import t from 'tap';
import { OAuthServer, protectedHandler } from '../support/oauth-server.js';
import { oauthIntegration } from '../support/oauth-config.js';
import { pollUntil } from '../support/poll.js';
import { waitFor } from '../support/wait-for.js';
import { configDir, startProxy, startUpstream, viaProxy } from '../support/servers.js';

/**
 * A client that hangs up while its request waits on a token refresh: the refresh still
 * finishes and is stored (a rotated refresh token is the only valid one now), nothing is
 * forwarded for the departed client, and the next request uses the stored token without
 * calling the provider again.
 */
t.test('a client that disconnects mid-refresh loses nothing', async (t) => {
  const as = await new OAuthServer({ rotate: true }).start();
  const up = await startUpstream(protectedHandler(as));
  const proxy = await startProxy(configDir('store: memory\n', { demo: oauthIntegration(as, up.port) }));
  t.teardown(async () => {
    await proxy.close();
    await Promise.all([as.close(), up.close()]);
  });
  const tokens = as.issue();
  // Within the 60 s margin: the first request refreshes before it is sent.
  t.equal((await proxy.connect('alice', 'demo', { credentials: { ...tokens, expires_in: 30 } })).status, 200);

  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  let reached!: () => void;
  const atTokenEndpoint = new Promise<void>((r) => (reached = r));
  as.beforeTokenReply = async () => {
    reached();
    await held;
  };

  const accepted = new Promise<Socket>((r) => proxy.server.once('connection', r));
  const req = http.request({ host: '127.0.0.1', port: proxy.port, path: `${up.origin}/data`, headers: { 'X-Entity-Id': 'alice' }, agent: false });
  req.on('error', () => undefined);
  req.end();
  await atTokenEndpoint;
  const serverSide = await accepted;
  req.destroy(); // the client is gone while the provider is still answering
  t.ok(serverSide.destroyed || (await waitFor(serverSide, 'close')), 'the proxy saw the client leave before the provider answered');
  release();
  as.beforeTokenReply = undefined;

  // The refresh result lands in the store even though nobody waits for it any more.
  const refreshed = async () => {
    const stored = (await (await proxy.admin('GET', '/api/entities/alice/connections/demo')).json()) as { expires_at?: string | null };
    return !!stored.expires_at && Date.parse(stored.expires_at) > Date.now() + 120_000;
  };
  t.ok(await pollUntil(refreshed, 10_000), 'the refreshed token set was stored');
  t.equal(as.validRefresh.has(tokens.refresh_token), false, 'the old refresh token was spent');
  t.equal(up.seen.length, 0, 'nothing was forwarded for the departed client');

  const r = await viaProxy(proxy.port, `${up.origin}/data`, { headers: { 'X-Entity-Id': 'alice' } });
  t.equal(r.status, 200, 'the next request goes through');
  t.equal(as.count('refresh_token'), 1, 'with the stored token: no second refresh');
  t.not(up.seen.at(-1)!.headers.authorization, `Bearer ${tokens.access_token}`);
  t.equal((await fetch(`${proxy.url}/healthz`)).status, 200, 'the process is up');
});
