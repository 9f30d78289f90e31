import { randomBytes, createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import pino from 'pino';
import type { Settings } from '../../src/config/types.js';
import { lockNameOf } from '../../src/store/locked-update.js';
import { openStore } from '../../src/store/open.js';
import { OAuthServer, protectedHandler, type OAuthServerOptions } from '../support/oauth-server.js';
import { oauthIntegration } from '../support/oauth-config.js';
import { pollUntil } from '../support/poll.js';
import { sqliteStore } from '../support/sqlite.js';
import { configDir, SECRET_KEY, startProxy, startUpstream, viaProxy, type TestProxy, type Upstream } from '../support/servers.js';

interface Setup {
  as: OAuthServer;
  up: Upstream;
  proxy: TestProxy;
  dir: string;
}

async function setup(t: Test, opts: { settings?: string; as?: OAuthServerOptions; auth?: string } = {}): Promise<Setup> {
  const as = await new OAuthServer({ rotate: true, ...opts.as }).start();
  const up = await startUpstream(protectedHandler(as));
  // SQLite, the default store, unless a test says otherwise: refreshes write rotated tokens back to it.
  const dir = configDir(opts.settings ?? sqliteStore(t), { demo: oauthIntegration(as, up.port, opts.auth ?? '') });
  const s: Setup = { as, up, dir, proxy: await startProxy(dir) };
  t.teardown(async () => {
    await s.proxy.close();
    await Promise.all([as.close(), up.close()]);
  });
  return s;
}

const nowSeconds = () => Math.floor(Date.now() / 1000);
const get = (s: Setup, entity = 'alice') => viaProxy(s.proxy.port, `${s.up.origin}/data`, { headers: { 'X-Entity-Id': entity } });
const connection = async (s: Setup) => (await (await s.proxy.admin('GET', '/api/entities/alice/connections/demo')).json()) as Record<string, unknown>;

t.test('upstream 401 → one refresh → replay of a POST whose body arrives byte-identical', async (t) => {
  const s = await setup(t);
  const tokens = s.as.issue();
  t.equal((await s.proxy.connect('alice', 'demo', { credentials: { ...tokens, expires_in: 3600 } })).status, 200);
  s.as.revokeAccess(tokens.access_token);
  const body = randomBytes(200_000);
  const r = await viaProxy(s.proxy.port, `${s.up.origin}/upload`, {
    method: 'POST',
    headers: { 'X-Entity-Id': 'alice', 'content-type': 'application/octet-stream' },
    body,
  });
  t.equal(r.status, 200);
  const j = r.json<{ body_sha256: string; body_length: number; token: string }>();
  t.equal(j.body_sha256, createHash('sha256').update(body).digest('hex'));
  t.equal(j.body_length, body.length);
  t.equal(s.as.count('refresh_token'), 1, 'one refresh');
  t.equal(s.up.seen.length, 2, 'sent, then replayed once');
  t.ok(s.up.seen[0]!.body.equals(body) && s.up.seen[1]!.body.equals(body), 'both attempts carried the same bytes');
  t.equal(s.up.seen[0]!.headers.authorization, `Bearer ${tokens.access_token}`);
  t.not(j.token, tokens.access_token);
  t.match(s.proxy.logs.text, /"refreshed":true,"replayed":true/);

  // The refused token was rotated away: the new refresh token is stored, the old one is dead.
  t.equal(s.as.validRefresh.has(tokens.refresh_token), false);
  const stored = await s.proxy.runtime.store.get('alice', 'demo');
  t.ok(s.as.validRefresh.has(stored!.credentials.refresh_token!));

  // A chunked body within the limit is buffered and replayed too.
  s.as.revokeAccess(j.token);
  const chunked = await viaProxy(s.proxy.port, `${s.up.origin}/upload`, {
    method: 'POST',
    headers: { 'X-Entity-Id': 'alice', 'transfer-encoding': 'chunked' },
    body: 'hello chunks',
  });
  t.equal(chunked.status, 200);
  t.equal(chunked.json<{ body_length: number }>().body_length, 12);
  t.equal(s.as.count('refresh_token'), 2);
});

t.test('a body over the replay limit streams: the 401 passes through and the next request refreshes first', async (t) => {
  const s = await setup(t, { settings: 'store: memory\nlimits: { replay_body_bytes: 1024 }\n' });
  const tokens = s.as.issue();
  await s.proxy.connect('alice', 'demo', { credentials: { ...tokens, expires_in: 3600 } });
  let token = tokens.access_token;
  let refreshes = 0;
  for (const headers of [{ 'content-length': '4096' }, { 'transfer-encoding': 'chunked' }] as Record<string, string>[]) {
    s.as.revokeAccess(token);
    const body = randomBytes(4096);
    const r = await viaProxy(s.proxy.port, `${s.up.origin}/upload`, { method: 'POST', headers: { 'X-Entity-Id': 'alice', ...headers }, body });
    t.equal(r.status, 401, 'the upstream answer goes back as is');
    t.equal(r.headers['x-credproxy-error'], undefined);
    t.same(r.json(), { message: 'Bad credentials' });
    t.ok(s.up.seen.at(-1)!.body.equals(body), 'the whole body reached the upstream');
    t.equal(s.as.count('refresh_token'), refreshes, 'no refresh during a streamed request');
    const seenBefore = s.up.seen.length;
    const next = await get(s);
    t.equal(next.status, 200, 'the next request refreshed before use');
    t.equal(s.as.count('refresh_token'), ++refreshes);
    t.equal(s.up.seen.length, seenBefore + 1, 'and was sent once, with the new token');
    token = next.json<{ token: string }>().token;
  }
});

t.test('100 concurrent requests with an expired token: exactly one token endpoint call, all succeed', async (t) => {
  const s = await setup(t);
  const tokens = s.as.issue();
  await s.proxy.connect('alice', 'demo', { credentials: { ...tokens, expires_at: nowSeconds() - 10 } });
  const all = await Promise.all(Array.from({ length: 100 }, () => get(s)));
  t.same(
    all.map((r) => r.status),
    Array(100).fill(200),
  );
  t.equal(s.as.count('refresh_token'), 1);
  t.equal(new Set(all.map((r) => r.json<{ token: string }>().token)).size, 1, 'all used the refreshed token');
  t.equal(s.as.count(), 1);
});

/** Holds the token endpoint's answers until `release()`; `reached` resolves when the first call arrives. */
function gateTokenEndpoint(s: Setup) {
  let release!: () => void;
  let reached!: () => void;
  const open = new Promise<void>((r) => (release = r));
  const arrived = new Promise<void>((r) => (reached = r));
  s.as.beforeToken = () => {
    reached();
    return open;
  };
  return { arrived, release };
}

/**
 * One request finds its unexpired token refused and starts a refresh, which the token
 * endpoint holds; `n` more requests arrive meanwhile (they find the stored, still unexpired
 * token, and must not send it); then the endpoint answers (after `beforeRelease`).
 */
async function duringRefresh(s: Setup, n: number, beforeRelease: () => void = () => {}) {
  const tokens = s.as.issue();
  await s.proxy.connect('alice', 'demo', { credentials: { ...tokens, expires_in: 3600 } });
  s.as.revokeAccess(tokens.access_token);
  const gate = gateTokenEndpoint(s);
  let received = 0;
  const count = () => received++;
  s.proxy.server.on('request', count);
  const first = get(s);
  await gate.arrived;
  const later = Array.from({ length: n }, () => get(s));
  // The later requests must be in the proxy (reading the stored token) before the refresh ends.
  const arrivedAll = await pollUntil(() => received >= n + 1, 30_000);
  s.proxy.server.off('request', count);
  if (!arrivedAll) throw new Error(`only ${received} of ${n + 1} requests reached the proxy`);
  beforeRelease();
  gate.release();
  return { tokens, all: await Promise.all([first, ...later]) };
}

t.test('requests that arrive while a refresh replaces their token wait for it instead of sending the refused token', async (t) => {
  const s = await setup(t);
  const { tokens, all } = await duringRefresh(s, 50);
  t.same(new Set(all.map((r) => r.status)), new Set([200]));
  t.equal(s.as.count('refresh_token'), 1, 'one token endpoint call');
  const withOld = s.up.seen.filter((r) => r.headers.authorization === `Bearer ${tokens.access_token}`).length;
  t.equal(withOld, 1, 'only the first request went out with the refused token');
  t.equal(s.up.seen.length, 52, 'the first one twice (refused, replayed), every other one once');
});

t.test('when the refresh they waited for fails, waiting requests get refresh_failed and the refresh token stays stored', async (t) => {
  const s = await setup(t);
  const { tokens, all } = await duringRefresh(s, 5, () => {
    s.as.tokenEndpoint = 'error500';
  });
  t.same(
    all.map((r) => [r.status, r.json<{ error: { code: string } }>().error.code]),
    Array(6).fill([502, 'refresh_failed']),
  );
  t.equal(s.as.count('refresh_token'), 1);
  t.equal(s.up.seen.length, 1, 'the refused token was sent once, by the request that found it refused');
  t.equal((await s.proxy.runtime.store.get('alice', 'demo'))?.credentials.refresh_token, tokens.refresh_token, 'the refresh token is kept');
});

t.test('a refresh takes the store lock, then re-reads past the cache: a refresh another process stored is used, not repeated', async (t) => {
  // Two stores on one SQLite file stand in for two instances without invalidation: the
  // proxy's cache keeps the expired token, so every request goes for a refresh.
  const data = mkdtempSync(join(tmpdir(), 'credproxy-oauth-'));
  t.teardown(() => rmSync(data, { recursive: true, force: true }));
  const settings = `store: sqlite:${join(data, 'db.sqlite')}\n`;
  const s = await setup(t, { settings });
  const { store: other } = await openStore({ store: `sqlite:${join(data, 'db.sqlite')}`, store_prefix: 'credproxy' } as Settings, { CREDPROXY_SECRET_KEY: SECRET_KEY }, pino({ level: 'silent' }));
  t.teardown(() => other.close());
  const old = s.as.issue();
  await s.proxy.connect('alice', 'demo', { credentials: { ...old, expires_at: nowSeconds() - 10 } });
  t.equal((await s.proxy.runtime.store.get('alice', 'demo'))?.credentials.access_token, old.access_token, 'the proxy caches the expired token');

  const lock = await s.proxy.runtime.store.locks.acquire(lockNameOf('alice', 'demo'));
  const pending = Array.from({ length: 10 }, () => get(s));
  // While the lock is held, "another instance" refreshes and stores the result.
  const fresh = s.as.issue();
  const base = (await other.get('alice', 'demo'))!;
  await other.put({ ...base, credentials: fresh, expires_at: Date.now() + 3_600_000, updated_at: Date.now() });
  await lock.release();
  const all = await Promise.all(pending);
  t.same(new Set(all.map((r) => r.status)), new Set([200]));
  t.same(new Set(all.map((r) => r.json<{ token: string }>().token)), new Set([fresh.access_token]), 'every request got the stored new token');
  t.equal(s.as.count(), 0, 'the provider was not called');
  t.ok(s.as.validRefresh.has(fresh.refresh_token), 'the refresh token stays unspent');
});

t.test('the refresh lock held elsewhere for too long: 502 refresh_failed, or the current token while it is still valid', async (t) => {
  // A token endpoint timeout of 2 s makes the lock wait about 13 s (its lifetime plus 1 s).
  const s = await setup(t, { settings: 'store: memory\nlimits: { upstream_response_timeout_ms: 2000 }\n' });
  const expired = s.as.issue();
  const valid = s.as.issue();
  await s.proxy.connect('alice', 'demo', { credentials: { ...expired, expires_at: nowSeconds() - 10 } });
  await s.proxy.connect('bob', 'demo', { credentials: { ...valid, expires_in: 30 } });
  const locks = s.proxy.runtime.store.locks;
  const held = await Promise.all(['alice', 'bob'].map((e) => locks.acquire(lockNameOf(e, 'demo'), { ttlMs: 120_000 })));
  t.teardown(() => Promise.all(held.map((l) => l.release())));
  const [a, b] = await Promise.all([get(s, 'alice'), get(s, 'bob')]);
  t.equal(a.status, 502);
  t.equal(a.headers['x-credproxy-error'], 'refresh_failed');
  t.match(a.json<{ error: { message: string } }>().error.message, /held the refresh lock/);
  t.equal(b.status, 200, 'a proactive refresh that cannot get the lock uses the still valid token');
  t.equal(b.json<{ token: string }>().token, valid.access_token);
  t.equal(s.as.count(), 0);
  t.equal(s.up.seen.length, 1, 'nothing was forwarded for the request that got no token');
});

t.test('a reconnect during a refresh wins: the refresh result is not written over it (fencing on the refresh token)', async (t) => {
  const s = await setup(t);
  const old = s.as.issue();
  await s.proxy.connect('alice', 'demo', { credentials: { ...old, expires_at: nowSeconds() - 10 } });
  const user = s.as.issue();
  // The user stores a new token set while the provider is still answering the refresh.
  s.as.beforeTokenReply = async () => {
    s.as.beforeTokenReply = undefined;
    t.equal((await s.proxy.connect('alice', 'demo', { credentials: { ...user, expires_in: 3600 } })).status, 200);
  };
  const r = await get(s);
  t.equal(r.status, 200);
  t.equal(r.json<{ token: string }>().token, user.access_token, 'the request uses what the user stored');
  t.equal(s.as.count('refresh_token'), 1);
  const stored = await s.proxy.runtime.store.get('alice', 'demo', { fresh: true });
  t.same(stored?.credentials, { access_token: user.access_token, refresh_token: user.refresh_token }, 'the reconnect is kept');
  t.match(s.proxy.logs.text, /the connection changed during the update/);
});

t.test('a delete during a refresh wins: the connection is not brought back, the request answers 424', async (t) => {
  const s = await setup(t);
  await s.proxy.connect('alice', 'demo', { credentials: { ...s.as.issue(), expires_at: nowSeconds() - 10 } });
  s.as.beforeTokenReply = async () => {
    s.as.beforeTokenReply = undefined;
    t.equal((await s.proxy.admin('DELETE', '/api/entities/alice/connections/demo')).status, 204);
  };
  const r = await get(s);
  t.equal(r.status, 424);
  t.equal(r.headers['x-credproxy-error'], 'connection_missing');
  t.equal(s.as.count('refresh_token'), 1);
  t.equal(await s.proxy.runtime.store.get('alice', 'demo', { fresh: true }), undefined, 'still deleted');
  t.equal(s.up.seen.length, 0);
});

t.test('proactive refresh within refresh_before keeps the old refresh token when none is returned', async (t) => {
  const s = await setup(t, { as: { rotate: false }, auth: '  refresh_before: 120' });
  const tokens = s.as.issue();
  await s.proxy.connect('alice', 'demo', { credentials: { ...tokens, expires_in: 100 } });
  t.equal((await get(s)).status, 200);
  t.equal(s.as.count('refresh_token'), 1, 'expiring within 120 s: refreshed before use');
  t.match(s.proxy.logs.text, /"refreshed":true,"replayed":false/);
  const stored = await s.proxy.runtime.store.get('alice', 'demo');
  t.equal(stored!.credentials.refresh_token, tokens.refresh_token, 'no refresh token in the answer: the old one is kept');
  t.not(stored!.credentials.access_token, tokens.access_token);
  t.equal((await get(s)).status, 200);
  t.equal(s.as.count('refresh_token'), 1, 'a fresh token is not refreshed again');
});

t.test('a token without expiry is not refreshed before use; the 401 path covers it', async (t) => {
  const s = await setup(t);
  const tokens = s.as.issue();
  await s.proxy.connect('alice', 'demo', { credentials: tokens });
  t.equal((await get(s)).status, 200);
  t.equal(s.as.count(), 0);
  s.as.revokeAccess(tokens.access_token);
  t.equal((await get(s)).status, 200);
  t.equal(s.as.count('refresh_token'), 1);
});

t.test('a connection without a refresh token: the 401 goes back as is', async (t) => {
  const s = await setup(t);
  await s.proxy.connect('alice', 'demo', { credentials: { access_token: 'not-valid-anywhere' } });
  const r = await get(s);
  t.equal(r.status, 401);
  t.equal(s.as.count(), 0);
});

t.test('restart (sqlite store) between rotations keeps the rotated refresh token', async (t) => {
  const data = mkdtempSync(join(tmpdir(), 'credproxy-oauth-'));
  t.teardown(() => rmSync(data, { recursive: true, force: true }));
  const s = await setup(t, { settings: `store: sqlite:${join(data, 'db.sqlite')}\n` });
  const tokens = s.as.issue();
  await s.proxy.connect('alice', 'demo', { credentials: { ...tokens, expires_at: nowSeconds() - 10 } });
  t.equal((await connection(s)).refreshed_at, null, 'never refreshed yet');
  const before = Date.now();
  t.equal((await get(s)).status, 200);
  t.equal(s.as.count('refresh_token'), 1);
  const first = await s.proxy.runtime.store.get('alice', 'demo');
  t.ok(first!.refreshed_at! >= before && first!.refreshed_at! <= Date.now(), 'the refresh recorded its time');
  await s.proxy.close();

  s.proxy = await startProxy(s.dir);
  t.equal((await connection(s)).refreshed_at, new Date(first!.refreshed_at!).toISOString(), 'kept on disk, shown by the admin API');
  s.as.revokeAccess(first!.credentials.access_token!);
  const r = await get(s);
  t.equal(r.status, 200, 'refreshed with the rotated refresh token read back from disk');
  t.equal(s.as.count('refresh_token'), 2);
  t.equal(s.as.calls[1]!.params.refresh_token, first!.credentials.refresh_token);
  t.ok((await s.proxy.runtime.store.get('alice', 'demo'))!.refreshed_at! >= first!.refreshed_at!, 'and moved on by the next refresh');
  // A new token set stored through the API is a new start: no refresh since.
  await s.proxy.connect('alice', 'demo', { credentials: s.as.issue() });
  t.equal((await connection(s)).refreshed_at, null);
});

t.test('invalid_grant → expired → 424 connection_expired, also for that very request, with no further provider calls', async (t) => {
  const s = await setup(t);
  await s.proxy.connect('alice', 'demo', { credentials: { access_token: 'at-old', refresh_token: 'rt-revoked', expires_at: nowSeconds() - 10 } });
  const r = await get(s);
  t.equal(r.status, 424);
  t.equal(r.headers['x-credproxy-error'], 'connection_expired');
  t.equal(s.as.count('refresh_token'), 1);
  const again = await get(s);
  t.equal(again.status, 424);
  t.equal(again.headers['x-credproxy-error'], 'connection_expired');
  t.equal(s.as.count(), 1, 'the provider is not called again');
  const c = await connection(s);
  t.equal(c.status, 'expired');
  t.match(c.reason, /invalid_grant/);
  t.same(c.fields, ['access_token', 'refresh_token'], 'a failed refresh deletes nothing');
  t.equal(s.up.seen.length, 0, 'nothing was forwarded');
});

t.test('invalid_grant after a 401 answers 424 for the request that got the 401', async (t) => {
  const s = await setup(t);
  await s.proxy.connect('alice', 'demo', { credentials: { access_token: 'at-refused', refresh_token: 'rt-revoked', expires_in: 3600 } });
  const r = await viaProxy(s.proxy.port, `${s.up.origin}/x`, { method: 'POST', headers: { 'X-Entity-Id': 'alice' }, body: 'hi' });
  t.equal(r.status, 424);
  t.equal(r.headers['x-credproxy-error'], 'connection_expired');
  t.equal(s.up.seen.length, 1);
});

t.test('token endpoint down → 502 refresh_failed, the connection stays active, later attempts back off', async (t) => {
  const s = await setup(t);
  const tokens = s.as.issue();
  await s.proxy.connect('alice', 'demo', { credentials: { ...tokens, expires_at: nowSeconds() - 10 } });
  s.as.tokenEndpoint = 'down';
  const r = await get(s);
  t.equal(r.status, 502);
  t.equal(r.headers['x-credproxy-error'], 'refresh_failed');
  t.equal((await connection(s)).status, 'active');
  t.equal(s.as.count(), 1);
  const again = await get(s);
  t.equal(again.status, 502);
  t.match(again.json<{ error: { message: string } }>().error.message, /next attempt in/);
  t.equal(s.as.count(), 1, 'backing off: the provider is not hammered');
  t.equal((await connection(s)).status, 'active');
  const stored = await s.proxy.runtime.store.get('alice', 'demo');
  t.equal(stored!.credentials.refresh_token, tokens.refresh_token, 'the refresh token is kept');
});

t.test('a proactive refresh that fails while the token is still valid uses the current token', async (t) => {
  const s = await setup(t);
  const tokens = s.as.issue();
  await s.proxy.connect('alice', 'demo', { credentials: { ...tokens, expires_in: 30 } });
  s.as.tokenEndpoint = 'error500';
  const r = await get(s);
  t.equal(r.status, 200);
  t.equal(r.json<{ token: string }>().token, tokens.access_token);
  t.equal((await get(s)).status, 200, 'while backing off, still the current token');
  t.equal(s.as.count(), 1);
});

t.test('a static-scheme request is not buffered and a 401 passes through', async (t) => {
  const up = await startUpstream((_q, res) => res.writeHead(401).end('no'));
  const dir = configDir('store: memory\n', { b: `hosts: ["127.0.0.1:${up.port}"]\nupstream: http\nauth: { type: bearer }\n` });
  const proxy = await startProxy(dir);
  t.teardown(async () => {
    await proxy.close();
    await up.close();
  });
  await proxy.connect('alice', 'b', { credentials: { token: 'tok' } });
  const r = await viaProxy(proxy.port, `${up.origin}/`, { method: 'POST', headers: { 'X-Entity-Id': 'alice' }, body: 'x' });
  t.equal(r.status, 401);
  t.equal(up.seen.length, 1);
});
