import t, { type Test } from 'tap';
import type { RedisTuning } from '../../src/store/redis.js';
import { OAuthServer, protectedHandler, type OAuthServerOptions } from '../support/oauth-server.js';
import { oauthIntegration } from '../support/oauth-config.js';
import { logLine } from '../support/log-wait.js';
import { pollUntil } from '../support/poll.js';
import { cleanPrefix, REDIS_URL, RedisRelay, uniquePrefix } from '../support/redis.js';
import { configDir, startProxy, startUpstream, viaProxy, type TestProxy, type Upstream } from '../support/servers.js';

/**
 * OAuth refresh across two credproxy instances on one Redis (issue 6): one refresh in
 * total, whatever instance the requests land on.
 */
interface Cluster {
  as: OAuthServer;
  up: Upstream;
  prefix: string;
  /** a config folder on this store URL, same prefix and integration */
  dirFor(store: string): string;
  start(dir: string, redis?: Partial<RedisTuning>): Promise<TestProxy>;
}

async function cluster(t: Test, as: OAuthServerOptions = {}): Promise<Cluster> {
  const server = await new OAuthServer({ rotate: true, ...as }).start();
  const up = await startUpstream(protectedHandler(server));
  const prefix = uniquePrefix();
  t.teardown(() => Promise.all([server.close(), up.close()]));
  const proxies: TestProxy[] = [];
  t.teardown(async () => {
    await Promise.all(proxies.map((p) => p.close()));
    await cleanPrefix(prefix);
  });
  return {
    as: server,
    up,
    prefix,
    dirFor: (store) => configDir(`store: ${store}\nstore_prefix: ${prefix}\n`, { demo: oauthIntegration(server, up.port) }),
    start: async (dir, redis) => {
      const p = await startProxy(dir, redis ? { redis } : {});
      proxies.push(p);
      return p;
    },
  };
}

const get = (p: TestProxy, c: Cluster, entity = 'alice') => viaProxy(p.port, `${c.up.origin}/data`, { headers: { 'X-Entity-Id': entity } });
const refreshLogs = (...ps: TestProxy[]) => ps.map((p) => p.logs.text.split('\n').filter((l) => l.includes('"msg":"token refreshed"')).length).reduce((a, b) => a + b, 0);

t.test('200 concurrent requests over two instances, slow rotating token endpoint: one refresh in total, all carry the new token', async (t) => {
  const c = await cluster(t, { delayMs: 300 });
  const dir = c.dirFor(REDIS_URL);
  const a = await c.start(dir);
  const b = await c.start(dir);
  const old = c.as.issue();
  // expires in 30 s: inside the 60 s margin, so every request wants a refresh first
  t.equal((await a.connect('alice', 'demo', { credentials: { ...old, expires_in: 30 } })).status, 200);
  t.equal((await b.runtime.store.get('alice', 'demo'))?.credentials.access_token, old.access_token, 'B holds the old token too');

  const all = await Promise.all(Array.from({ length: 200 }, (_, i) => get(i % 2 === 0 ? a : b, c)));
  t.same(
    all.map((r) => r.status),
    Array(200).fill(200),
    'all 200 succeed',
  );
  t.equal(c.as.count('refresh_token'), 1, 'exactly one refresh');
  t.equal(c.as.count(), 1, 'exactly one token endpoint call in total');
  t.equal(refreshLogs(a, b), 1);

  const stored = await a.runtime.store.get('alice', 'demo', { fresh: true });
  const fresh = stored!.credentials.access_token!;
  t.not(fresh, old.access_token);
  t.equal(c.up.seen.length, 200, 'no request needed a replay');
  t.same(new Set(c.up.seen.map((s) => s.headers.authorization)), new Set([`Bearer ${fresh}`]), 'every upstream request carried the new token');
  t.not(stored!.credentials.refresh_token, old.refresh_token, 'the rotated refresh token is stored');
  t.ok(c.as.validRefresh.has(stored!.credentials.refresh_token!));
  t.notMatch(a.logs.text + b.logs.text, new RegExp(`${old.refresh_token}|${fresh}`), 'no token in the logs');
});

t.test('a 401 refresh on A reaches B through invalidation: B uses the new token without refreshing', async (t) => {
  const c = await cluster(t);
  const dir = c.dirFor(REDIS_URL);
  const a = await c.start(dir);
  const b = await c.start(dir);
  const old = c.as.issue();
  await a.connect('alice', 'demo', { credentials: { ...old, expires_in: 3600 } });
  t.equal((await get(a, c)).status, 200);
  t.equal((await get(b, c)).status, 200);
  t.equal((await b.runtime.store.get('alice', 'demo'))?.credentials.access_token, old.access_token, 'B has the old token cached');

  c.as.revokeAccess(old.access_token);
  const r = await get(a, c);
  t.equal(r.status, 200);
  t.match(a.logs.text, /"refreshed":true,"replayed":true/);
  const fresh = r.json<{ token: string }>().token;
  t.not(fresh, old.access_token);
  t.equal(c.as.count(), 1);

  t.ok(await pollUntil(async () => (await b.runtime.store.get('alice', 'demo'))?.credentials.access_token === fresh), "B's cache learns the new token within 1 s");
  const seenBefore = c.up.seen.length;
  const rb = await get(b, c);
  t.equal(rb.status, 200);
  t.equal(c.up.seen.length, seenBefore + 1, 'sent once: no 401, no replay');
  t.equal(c.up.seen.at(-1)?.headers.authorization, `Bearer ${fresh}`);
  t.equal(c.as.count(), 1, 'B did not call the provider');
  t.equal(refreshLogs(b), 0);
});

t.test('Redis lost after the provider rotated the refresh token: kept with the lock, written back, and B reuses it', async (t) => {
  const relay = await new RedisRelay().start();
  t.teardown(() => relay.close());
  const c = await cluster(t);
  // A reaches Redis through the relay the test cuts; B directly.
  const a = await c.start(c.dirFor(relay.url), { opTimeoutMs: 1_000 });
  const b = await c.start(c.dirFor(REDIS_URL));
  const old = c.as.issue();
  await b.connect('alice', 'demo', { credentials: { ...old, expires_at: Math.floor(Date.now() / 1000) - 10 } });
  t.equal((await b.runtime.store.get('alice', 'demo'))?.credentials.refresh_token, old.refresh_token);

  // The provider answers (and rotates) only after A has lost Redis.
  c.as.beforeTokenReply = async () => {
    c.as.beforeTokenReply = undefined;
    await relay.cut();
  };
  const ra = await get(a, c);
  t.equal(ra.status, 200, 'the refreshing request is served with the new token');
  const fresh = ra.json<{ token: string }>().token;
  t.not(fresh, old.access_token);
  t.equal(c.as.count('refresh_token'), 1);
  t.equal(c.as.validRefresh.has(old.refresh_token), false, 'the provider rotated the old refresh token away');
  t.match(a.logs.text, /kept in memory and retried/, 'the result waits in memory on A');
  t.equal((await b.runtime.store.get('alice', 'demo', { fresh: true }))?.credentials.refresh_token, old.refresh_token, 'Redis still holds the spent refresh token');
  t.match(a.logs.text, /"persisted":false/);

  // B's token is expired too. A still holds the connection's lock in Redis, so B waits
  // rather than spending the dead refresh token (which would expire the connection).
  const pendingB = get(b, c);
  await relay.restore();
  const rb = await pendingB;
  t.equal(rb.status, 200, 'B is served once A has written its result');
  t.equal(rb.json<{ token: string }>().token, fresh, 'with the token A obtained');
  t.equal(c.as.count(), 1, 'no second token endpoint call');
  t.ok(await logLine(a.logs, /pending connection update written/, 15_000), 'nothing left pending on A');
  const stored = await b.runtime.store.get('alice', 'demo', { fresh: true });
  t.equal(stored?.status, 'active');
  t.equal(stored?.credentials.access_token, fresh);
  t.ok(c.as.validRefresh.has(stored!.credentials.refresh_token!), 'the stored refresh token is the rotated, valid one');
  t.match(a.logs.text, /pending connection update written/);

  // And it works: the next refresh spends the rotated token.
  c.as.revokeAccess(fresh);
  t.equal((await get(b, c)).status, 200);
  t.equal(c.as.count('refresh_token'), 2);
  t.equal(c.as.calls[1]?.params.refresh_token, stored!.credentials.refresh_token);
});

t.test('invalid_grant on one instance expires the connection for both: one provider call, every request 424', async (t) => {
  const c = await cluster(t, { delayMs: 300 });
  const dir = c.dirFor(REDIS_URL);
  const a = await c.start(dir);
  const b = await c.start(dir);
  await a.connect('alice', 'demo', { credentials: { access_token: 'at-old', refresh_token: 'rt-revoked', expires_at: Math.floor(Date.now() / 1000) - 10 } });
  t.equal((await b.runtime.store.get('alice', 'demo'))?.status, 'active', 'B holds the connection as active');
  const all = await Promise.all(Array.from({ length: 20 }, (_, i) => get(i % 2 === 0 ? a : b, c)));
  t.same(new Set(all.map((r) => `${r.status} ${String(r.headers['x-credproxy-error'])}`)), new Set(['424 connection_expired']));
  t.equal(c.as.count(), 1, 'the provider was asked once');
  t.equal(c.up.seen.length, 0, 'nothing was forwarded');
  t.equal((await b.runtime.store.get('alice', 'demo', { fresh: true }))?.status, 'expired');
  const again = await get(b, c);
  t.equal(again.headers['x-credproxy-error'], 'connection_expired');
  t.equal(c.as.count(), 1);
});
