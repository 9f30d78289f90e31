import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import t, { type Test } from 'tap';
import type { Settings } from '../../src/config/types.js';
import type { ConnectionEvent } from '../../src/events.js';
import { openStore } from '../../src/store/open.js';
import { connectionKey } from '../../src/oauth/refresh.js';
import { OAuthServer, protectedHandler } from '../support/oauth-server.js';
import { oauthIntegration } from '../support/oauth-config.js';
import { configDir, SECRET_KEY, startProxy, startUpstream, viaProxy, type TestProxy, type Upstream } from '../support/servers.js';
import { startReceiver, verifySignature, type Receiver } from '../support/webhook.js';

const SECRET = 'whsec-refresh-0123456789';

interface Setup {
  as: OAuthServer;
  up: Upstream;
  proxy: TestProxy;
  hook: Receiver;
}

async function setup(t: Test, opts: { held?: boolean; settings?: string } = {}): Promise<Setup> {
  const as = await new OAuthServer({ rotate: true }).start();
  const up = await startUpstream(protectedHandler(as));
  const hook = await startReceiver(opts);
  const dir = configDir(`${opts.settings ?? 'store: memory\n'}events:\n  webhook_url: ${hook.server.origin}/hooks\n  secret: \${HOOK_SECRET}\n`, { demo: oauthIntegration(as, up.port) });
  const proxy = await startProxy(dir, { env: { HOOK_SECRET: SECRET }, events: { baseDelayMs: 5, maxDelayMs: 20 } });
  t.teardown(async () => {
    hook.release();
    await proxy.close();
    await Promise.all([as.close(), up.close(), hook.server.close()]);
  });
  return { as, up, proxy, hook };
}

const nowSeconds = () => Math.floor(Date.now() / 1000);
const get = (s: Setup, entity = 'alice') => viaProxy(s.proxy.port, `${s.up.origin}/data`, { headers: { 'X-Entity-Id': entity } });

/**
 * Waits out the refresh backoff of a connection, so the next request calls the provider again.
 * A deliberate sleep: the backoff is time that must pass, and no event marks its end.
 */
async function pastBackoff(s: Setup, entity = 'alice') {
  await sleep(s.proxy.runtime.refresh.backoff.waitFor(connectionKey({ entity, integration: 'demo' })) + 5);
}

async function metric(s: Setup, outcome: string): Promise<number> {
  const text = await (await fetch(`${s.proxy.url}/metrics`)).text();
  const m = new RegExp(`credproxy_refreshes_total\\{integration="demo",outcome="${outcome}"\\} (\\d+)`).exec(text);
  return m ? Number(m[1]) : 0;
}

t.test('a failure streak is one connection.refresh_failed, its end one connection.recovered; a held receiver blocks no request', async (t) => {
  const s = await setup(t, { held: true });
  const tokens = s.as.issue();
  t.equal((await s.proxy.connect('alice', 'demo', { credentials: { ...tokens, expires_at: nowSeconds() - 10 } })).status, 200);

  // The receiver holds every delivery open from here on: requests must not wait for it.
  s.as.tokenEndpoint = 'down';
  const down = await get(s);
  t.equal(down.status, 502);
  t.equal(down.headers['x-credproxy-error'], 'refresh_failed');
  await pastBackoff(s);
  s.as.tokenEndpoint = 'error500';
  t.equal((await get(s)).status, 502);
  await pastBackoff(s);
  s.as.tokenEndpoint = 'garbage';
  t.equal((await get(s)).status, 502);
  t.equal(s.as.count('refresh_token'), 3, 'three provider calls, three failures');
  await pastBackoff(s);
  s.as.tokenEndpoint = 'up';
  const ok = await get(s);
  t.equal(ok.status, 200, 'answered while the receiver still holds the first event');
  t.not(ok.json<{ token: string }>().token, tokens.access_token);
  t.equal(s.hook.events().length, 0, 'no delivery was answered yet');
  t.ok(s.hook.server.seen.length >= 1, 'the first delivery is in flight');

  s.hook.release();
  await s.proxy.runtime.events.settled();
  const got = s.hook.events();
  t.same(
    got.map((e) => [e.type, e.entity, e.integration, e.status]),
    [
      ['connection.active', 'alice', 'demo', 'active'],
      ['connection.refresh_failed', 'alice', 'demo', 'active'],
      ['connection.recovered', 'alice', 'demo', 'active'],
    ],
    'each event once, in order: the streak of three failures is announced once',
  );
  const failed = got[1]!;
  t.match(failed.reason, /token endpoint could not be reached/, 'the reason is the first failure');
  t.equal(got[2]!.reason, undefined);
  t.equal(new Set(got.map((e) => e.id)).size, 3);
  t.equal(s.hook.server.seen.length, 3, 'every event delivered on the first attempt');
  for (const seen of s.hook.server.seen) {
    t.ok(verifySignature(seen, SECRET), `${String(seen.headers['x-credproxy-event'])}: the signature verifies`);
    t.notOk(verifySignature(seen, 'other-secret'));
    for (const secret of [tokens.access_token, tokens.refresh_token, s.as.clientSecret]) t.notOk(seen.body.includes(secret), 'no secret in an event');
  }
  t.equal(await metric(s, 'error'), 3);
  t.equal(await metric(s, 'ok'), 1);
  t.equal(await metric(s, 'invalid_grant'), 0);
});

t.test('a new streak after a recovery is announced again', async (t) => {
  const s = await setup(t);
  await s.proxy.connect('alice', 'demo', { credentials: { ...s.as.issue(), expires_at: nowSeconds() - 10 } });
  for (let round = 0; round < 2; round++) {
    s.as.tokenEndpoint = 'error500';
    t.equal((await get(s)).status, 502);
    await pastBackoff(s);
    s.as.tokenEndpoint = 'up';
    const r = await get(s);
    t.equal(r.status, 200);
    // Expire the fresh token again, so the next round refreshes before use.
    const stored = (await s.proxy.runtime.store.get('alice', 'demo'))!;
    await s.proxy.runtime.store.put({ ...stored, expires_at: Date.now() - 10_000, updated_at: Date.now() });
  }
  await s.proxy.runtime.events.settled();
  t.same(
    s.hook.events().map((e) => e.type),
    ['connection.active', 'connection.refresh_failed', 'connection.recovered', 'connection.refresh_failed', 'connection.recovered'],
  );
  t.equal(await metric(s, 'error'), 2);
  t.equal(await metric(s, 'ok'), 2);
});

t.test('a proactive refresh failing while the token is still valid: refresh_failed, the request goes through; recovered later', async (t) => {
  const s = await setup(t);
  const tokens = s.as.issue();
  await s.proxy.connect('alice', 'demo', { credentials: { ...tokens, expires_in: 30 } });
  s.as.tokenEndpoint = 'error500';
  const r = await get(s);
  t.equal(r.status, 200);
  t.equal(r.json<{ token: string }>().token, tokens.access_token, 'the current token was used');
  await pastBackoff(s);
  s.as.tokenEndpoint = 'up';
  const again = await get(s);
  t.equal(again.status, 200);
  t.not(again.json<{ token: string }>().token, tokens.access_token, 'refreshed this time');
  await s.proxy.runtime.events.settled();
  const got = s.hook.events();
  t.same(
    got.map((e) => e.type),
    ['connection.active', 'connection.refresh_failed', 'connection.recovered'],
  );
  t.match(got[1]!.reason, /answered 500/);
});

t.test('invalid_grant counts as its own outcome and is connection.expired, not refresh_failed', async (t) => {
  const s = await setup(t);
  await s.proxy.connect('alice', 'demo', { credentials: { access_token: 'at-old', refresh_token: 'rt-revoked', expires_at: nowSeconds() - 10 } });
  const r = await get(s);
  t.equal(r.status, 424);
  t.equal(r.headers['x-credproxy-error'], 'connection_expired');
  await s.proxy.runtime.events.settled();
  const got: ConnectionEvent[] = s.hook.events();
  t.same(
    got.map((e) => [e.type, e.status]),
    [
      ['connection.active', 'active'],
      ['connection.expired', 'expired'],
    ],
  );
  t.match(got[1]!.reason, /invalid_grant/);
  t.equal(await metric(s, 'invalid_grant'), 1);
  t.equal(await metric(s, 'error'), 0);
  t.equal(await metric(s, 'ok'), 0);
});

t.test('a streak ended by another instance refreshing: recovered once, and the provider is not called', async (t) => {
  // Two stores on one SQLite file stand in for two instances: the proxy's cache keeps the
  // expired token, the other store writes the refreshed one (as in refresh.test.ts).
  const data = mkdtempSync(join(tmpdir(), 'credproxy-events-'));
  t.teardown(() => rmSync(data, { recursive: true, force: true }));
  const s = await setup(t, { settings: `store: sqlite:${join(data, 'db.sqlite')}\n` });
  const { store: other } = await openStore({ store: `sqlite:${join(data, 'db.sqlite')}`, store_prefix: 'credproxy' } as Settings, { CREDPROXY_SECRET_KEY: SECRET_KEY }, pino({ level: 'silent' }));
  t.teardown(() => other.close());
  await s.proxy.connect('alice', 'demo', { credentials: { ...s.as.issue(), expires_at: nowSeconds() - 10 } });
  s.as.tokenEndpoint = 'down';
  t.equal((await get(s)).status, 502);
  const fresh = s.as.issue();
  const base = (await other.get('alice', 'demo'))!;
  await other.put({ ...base, credentials: fresh, expires_at: Date.now() + 3_600_000, updated_at: Date.now() });
  await pastBackoff(s);
  const calls = s.as.count();
  const r = await get(s);
  t.equal(r.status, 200);
  t.equal(r.json<{ token: string }>().token, fresh.access_token, 'the token the other instance stored');
  t.equal(s.as.count(), calls, 'the provider was not called');
  await s.proxy.runtime.events.settled();
  t.same(
    s.hook.events().map((e) => e.type),
    ['connection.active', 'connection.refresh_failed', 'connection.recovered'],
  );
});
