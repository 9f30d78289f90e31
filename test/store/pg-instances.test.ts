import t, { type Test } from 'tap';
import { logLine } from '../support/log-wait.js';
import type { RedisTuning } from '../../src/store/redis.js';
import { OAuthServer, protectedHandler, type OAuthServerOptions } from '../support/oauth-server.js';
import { oauthIntegration } from '../support/oauth-config.js';
import { pollUntil } from '../support/poll.js';
import { freshDatabase, pgUrl, PostgresRelay } from '../support/postgres.js';
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

t.test('the database cut mid-storm: 503 store_unavailable and readyz 503, no refresh, then recovery without a restart', async (t) => {
  const relay = await new PostgresRelay().start();
  t.teardown(() => relay.close());
  const c = await cluster(t);
  // A reaches PostgreSQL through the relay the test cuts; B directly.
  const a = await c.start(c.dirFor(relay.url(db)), { opTimeoutMs: 1_000, connectTimeoutMs: 1_000 });
  const b = await c.start(c.dirFor(pgUrl(db)));
  const tok = c.as.issue();
  await a.connect('carol', 'demo', { credentials: { ...tok, expires_in: 3600 } });
  // dave's token is past its expiry: a request for him wants a refresh.
  await b.connect('dave', 'demo', { credentials: { ...c.as.issue(), expires_at: Math.floor(Date.now() / 1000) - 10 } });
  const callsBefore = c.as.count();

  const results: Array<{ phase: string; status: number; code: unknown }> = [];
  let phase = 'before';
  let stop = false;
  const storm = Promise.all(
    Array.from({ length: 8 }, async () => {
      while (!stop) {
        const r = await get(a, c, 'carol');
        results.push({ phase, status: r.status, code: r.headers['x-credproxy-error'] });
      }
    }),
  );
  await pollUntil(() => results.length >= 40, 5_000);
  phase = 'cut';
  await relay.cut();
  t.ok(await pollUntil(() => results.some((r) => r.phase === 'cut' && r.status === 503), 2_000), '503 within a second or so of the cut');
  const ready = await fetch(`${a.url}/readyz`);
  t.equal(ready.status, 503, 'readyz 503 while the database is unreachable');
  t.equal(ready.headers.get('x-credproxy-error'), 'store_unavailable');
  const expired = await get(a, c, 'dave');
  t.equal(expired.status, 503, 'a connection that needs a refresh: 503, not refreshed');
  t.equal(c.as.count(), callsBefore, 'no refresh started without the lock');
  t.equal((await fetch(`${a.url}/healthz`)).status, 200, 'the process is up');
  t.equal((await get(b, c, 'carol')).status, 200, 'B, which still reaches the database, serves');
  // Deliberately keep the database away a while longer, so the storm keeps hitting the outage
  // (no event to wait for: the point is that nothing changes while it lasts).
  await new Promise((r) => setTimeout(r, 500));

  phase = 'restored';
  await relay.restore();
  t.ok(await pollUntil(async () => (await fetch(`${a.url}/readyz`)).status === 200, 15_000), 'ready again by itself');
  t.ok(await pollUntil(() => results.filter((r) => r.phase === 'restored' && r.status === 200).length >= 20, 15_000), 'the storm is served again');
  stop = true;
  await storm;

  const odd = results.filter((r) => !(r.status === 200 || (r.status === 503 && r.code === 'store_unavailable')));
  t.same(odd, [], 'every answer is 200 or 503 store_unavailable');
  t.ok(results.filter((r) => r.phase === 'before').every((r) => r.status === 200));
  t.ok(results.filter((r) => r.phase === 'cut').length > 0 && results.filter((r) => r.phase === 'cut' && r.status === 503).length > 0);
  t.ok(c.up.seen.every((s) => s.headers.authorization !== undefined), 'nothing was forwarded without its credential');
  const back = await get(a, c, 'dave');
  t.equal(back.status, 200, 'after recovery the expired connection is refreshed');
  t.equal(c.as.count(), callsBefore + 1, 'once');
  t.comment(`storm: ${results.length} requests, ${results.filter((r) => r.status === 503).length} answered 503`);
});

t.test('the database lost after the provider rotated the refresh token: kept with the lock, written back, B reuses it', async (t) => {
  const relay = await new PostgresRelay().start();
  t.teardown(() => relay.close());
  const c = await cluster(t);
  const a = await c.start(c.dirFor(relay.url(db)), { opTimeoutMs: 1_000, connectTimeoutMs: 1_000 });
  const b = await c.start(c.dirFor(pgUrl(db)));
  const old = c.as.issue();
  await b.connect('erin', 'demo', { credentials: { ...old, expires_at: Math.floor(Date.now() / 1000) - 10 } });
  c.as.beforeTokenReply = async () => {
    c.as.beforeTokenReply = undefined;
    await relay.cut();
  };
  const ra = await get(a, c, 'erin');
  t.equal(ra.status, 200, 'the refreshing request is served with the new token');
  const fresh = ra.json<{ token: string }>().token;
  t.match(a.logs.text, /kept in memory and retried/, 'the result waits in memory on A');
  t.equal((await b.runtime.store.get('erin', 'demo', { fresh: true }))?.credentials.refresh_token, old.refresh_token, 'the database still holds the spent refresh token');

  // B's token is expired too; A's lock row is still there, so B waits instead of spending the dead refresh token.
  const pendingB = get(b, c, 'erin');
  await relay.restore();
  const rb = await pendingB;
  t.equal(rb.status, 200);
  t.equal(rb.json<{ token: string }>().token, fresh, 'with the token A obtained');
  t.equal(c.as.count(), 1, 'no second token endpoint call');
  t.ok(await logLine(a.logs, /pending connection update written/, 15_000), 'the pending update is written on A');
  const stored = await b.runtime.store.get('erin', 'demo', { fresh: true });
  t.equal(stored?.credentials.access_token, fresh);
  t.ok(c.as.validRefresh.has(stored!.credentials.refresh_token!), 'the stored refresh token is the rotated, valid one');
});

t.test('cache hits do not touch the database: a stalled database does not slow cached injection', async (t) => {
  const relay = await new PostgresRelay().start();
  t.teardown(() => relay.close());
  const c = await cluster(t);
  const a = await c.start(c.dirFor(relay.url(db)), { opTimeoutMs: 500, cacheTtlMs: 3_600_000 });
  await a.connect('gina', 'demo', { credentials: { ...c.as.issue(), expires_in: 3600 } });
  t.equal((await get(a, c, 'gina')).status, 200, 'cached');
  // Open connections stay open (the listener does not notice), but no query would ever be
  // answered: a request that touched the database would wait out the 500 ms timeout and fail.
  relay.stall();
  const slowest: number[] = [];
  const all = await Promise.all(
    Array.from({ length: 20 }, async () => {
      const started = Date.now();
      const r = await get(a, c, 'gina');
      slowest.push(Date.now() - started);
      return r;
    }),
  );
  t.same(all.map((r) => r.status), Array(20).fill(200), 'served from the cache');
  t.comment(`slowest cached request with the database stalled: ${Math.max(...slowest)} ms`);
  t.equal((await get(a, c, 'hank')).status, 503, 'a miss does need the database');
});
