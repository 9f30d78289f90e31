import t, { type Test } from 'tap';
import type { RedisTuning } from '../../src/store/redis.js';
import { OAuthServer, protectedHandler, type OAuthServerOptions } from '../support/oauth-server.js';
import { oauthIntegration } from '../support/oauth-config.js';
import { pollUntil } from '../support/poll.js';
import { freshDatabase, pgUrl } from '../support/postgres.js';
import { uniquePrefix } from '../support/redis.js';
import { configDir, startProxy, startUpstream, viaProxy, type TestProxy, type Upstream } from '../support/servers.js';

/**
 * Several credproxy instances on one PostgreSQL and no Redis (issue 18): what a user sees
 * of the shared store through the proxy, two instances in this process.
 */
const db = await freshDatabase(t);

interface Cluster {
  as: OAuthServer;
  up: Upstream;
  dirFor(store: string): string;
  start(dir: string, tuning?: Partial<RedisTuning>): Promise<TestProxy>;
}

async function cluster(t: Test, as: OAuthServerOptions = {}): Promise<Cluster> {
  const server = await new OAuthServer({ rotate: true, ...as }).start();
  const up = await startUpstream(protectedHandler(server));
  const prefix = uniquePrefix();
  t.teardown(() => Promise.all([server.close(), up.close()]));
  const proxies: TestProxy[] = [];
  t.teardown(() => Promise.all(proxies.map((p) => p.close())));
  return {
    as: server,
    up,
    dirFor: (store) => configDir(`store: ${store}\nstore_prefix: ${prefix}\n`, { demo: oauthIntegration(server, up.port) }),
    start: async (dir, tuning) => {
      const p = await startProxy(dir, tuning ? { redis: tuning } : {});
      proxies.push(p);
      return p;
    },
  };
}

const get = (p: TestProxy, c: Cluster, entity = 'alice') => viaProxy(p.port, `${c.up.origin}/data`, { headers: { 'X-Entity-Id': entity } });

t.test('200 concurrent requests over two instances on one PostgreSQL: one refresh in total, all carry the new token', async (t) => {
  const c = await cluster(t, { delayMs: 300 });
  const dir = c.dirFor(pgUrl(db));
  const a = await c.start(dir);
  const b = await c.start(dir);
  const old = c.as.issue();
  // expires in 30 s: inside the 60 s margin, so every request wants a refresh first
  t.equal((await a.connect('alice', 'demo', { credentials: { ...old, expires_in: 30 } })).status, 200);
  t.equal((await b.runtime.store.get('alice', 'demo'))?.credentials.access_token, old.access_token, 'B reads what A stored');

  const all = await Promise.all(Array.from({ length: 200 }, (_, i) => get(i % 2 === 0 ? a : b, c)));
  t.same(all.map((r) => r.status), Array(200).fill(200), 'all 200 succeed');
  t.equal(c.as.count(), 1, 'exactly one token endpoint call across both instances');
  const stored = await b.runtime.store.get('alice', 'demo', { fresh: true });
  const fresh = stored!.credentials.access_token!;
  t.not(fresh, old.access_token);
  t.same(new Set(c.up.seen.map((s) => s.headers.authorization)), new Set([`Bearer ${fresh}`]), 'every upstream request carried the new token');
  t.ok(c.as.validRefresh.has(stored!.credentials.refresh_token!), 'the rotated refresh token is stored');
  t.notMatch(a.logs.text + b.logs.text, new RegExp(`${old.refresh_token}|${fresh}`), 'no token in the logs');
});

t.test('an update on A and a delete on B reach the other instance within 1 s', async (t) => {
  const c = await cluster(t);
  const dir = c.dirFor(pgUrl(db));
  // An hour of cache ttl: only a notification can make the other instance re-read.
  const a = await c.start(dir, { cacheTtlMs: 3_600_000 });
  const b = await c.start(dir, { cacheTtlMs: 3_600_000 });
  const one = c.as.issue();
  await a.connect('bob', 'demo', { credentials: { ...one, expires_in: 3600 } });
  t.equal((await get(a, c, 'bob')).status, 200);
  t.equal((await get(b, c, 'bob')).status, 200, 'both instances now hold the connection in their caches');

  const two = c.as.issue();
  await a.connect('bob', 'demo', { credentials: { ...two, expires_in: 3600 } });
  t.ok(
    await pollUntil(async () => (await get(b, c, 'bob')).status === 200 && c.up.seen.at(-1)?.headers.authorization === `Bearer ${two.access_token}`),
    'B injects the updated token',
  );

  t.equal((await b.admin('DELETE', '/api/entities/bob/connections/demo')).status, 204);
  t.ok(await pollUntil(async () => (await get(a, c, 'bob')).status === 424), 'A stops injecting within 1 s: connection_missing');
  const seenBefore = c.up.seen.length;
  t.equal((await get(a, c, 'bob')).headers['x-credproxy-error'], 'connection_missing');
  t.equal(c.up.seen.length, seenBefore, 'nothing forwarded after the delete');
  const listed = (await (await a.admin('GET', '/api/entities/bob/connections')).json()) as { connections: unknown[] };
  t.same(listed.connections, []);
});
