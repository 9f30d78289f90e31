import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import pino from 'pino';
import type { Settings } from '../../src/config/types.js';
import { openStore } from '../../src/store/open.js';
import { OAuthServer, protectedHandler } from '../support/oauth-server.js';
import { oauthIntegration } from '../support/oauth-config.js';
import { freshDatabase, pgUrl } from '../support/postgres.js';
import { uniquePrefix } from '../support/redis.js';
import { configDir, startProxy, startUpstream, viaProxy } from '../support/servers.js';

/**
 * The rotation a person does (README "Running several instances"): instances already hold the
 * new key, `credproxy rekey` (the built bin) runs while one of them serves requests whose
 * tokens refresh on every call; no refresh is lost to the rekey, then the old key is retired.
 */
const built = existsSync(join(process.cwd(), 'dist', 'src', 'cli.js'));
const skip = built ? false : 'dist/ is not built: run npm test (it builds first)';
const OLD = Buffer.alloc(32, 41).toString('base64');
const NEW = Buffer.alloc(32, 42).toString('base64');
const ADMIN_ENV = { CREDPROXY_ADMIN_TOKEN: 'test-admin-token-0123456789' };
const db = await freshDatabase(t);

function rekey(dir: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, ['bin/credproxy.js', 'rekey', '--config', dir, '--progress-every', '10'], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, out, err })));
}

t.test('rekey while an instance keeps serving and refreshing: every stored refresh token is the live one', { skip }, async (t) => {
  // Tokens live 30 s, inside the 60 s refresh margin: every request refreshes (and rotates) first.
  const as = await new OAuthServer({ rotate: true, expiresIn: 30 }).start();
  const up = await startUpstream(protectedHandler(as));
  t.teardown(() => Promise.all([as.close(), up.close()]));
  const prefix = uniquePrefix();
  const dir = configDir(`store: ${pgUrl(db)}\nstore_prefix: ${prefix}\n`, { demo: oauthIntegration(as, up.port) });
  const N = 60;
  const entities = Array.from({ length: N }, (_, i) => `user${i}`);

  const before = await startProxy(dir, { env: { CREDPROXY_SECRET_KEY: OLD } });
  for (const e of entities) t.equal((await before.connect(e, 'demo', { credentials: { ...as.issue(), expires_in: 30 } })).status, 200);
  await before.close();

  const ring = { CREDPROXY_SECRET_KEYS: `default:${OLD},k2:${NEW}` };
  const serving = await startProxy(dir, { env: { CREDPROXY_SECRET_KEY: '', ...ring } });
  t.teardown(() => serving.close());
  const done = rekey(dir, { ...ring, ...ADMIN_ENV });
  let finished = false;
  void done.then(() => (finished = true));
  const statuses: number[] = [];
  for (let round = 0; round < 2 || !finished; round++) {
    const batch = await Promise.all(entities.map((e) => viaProxy(serving.port, `${up.origin}/data`, { headers: { 'X-Entity-Id': e } })));
    statuses.push(...batch.map((r) => r.status));
  }
  const r = await done;
  t.equal(r.code, 0, r.err);
  t.match(r.out, new RegExp(`${N} connections: \\d+ rekeyed`));
  t.ok(statuses.length >= 2 * N && statuses.every((s) => s === 200), `every request through the serving instance succeeded (${statuses.length})`);
  t.ok(as.count() >= 2 * N, `tokens were refreshed throughout (${as.count()} token calls)`);

  const again = await rekey(dir, { ...ring, ...ADMIN_ENV });
  t.match(again.out, new RegExp(`${N} connections: 0 rekeyed, ${N} already on key "k2"`), 'nothing left on the old key');
  const { store } = await openStore({ store: pgUrl(db), store_prefix: prefix } as Settings, { CREDPROXY_SECRET_KEYS: `k2:${NEW}`, ...ADMIN_ENV }, pino({ level: 'silent' }));
  t.teardown(() => store.close());
  for (const e of entities) {
    const c = await store.get(e, 'demo', { fresh: true });
    t.ok(c && as.validRefresh.has(c.credentials.refresh_token!), `${e}: the stored refresh token is the provider's current one (no stale write)`);
  }
  t.notMatch(serving.logs.text, new RegExp(`${OLD}|${NEW}`), 'no key in the logs');
});

t.test('a connection sealed with a key the instance lacks is listed as failed with the reason, and answers 424', { skip }, async (t) => {
  const up = await startUpstream((_req, res) => res.end('ok'));
  t.teardown(() => up.close());
  const prefix = uniquePrefix();
  const dir = configDir(`store: ${pgUrl(db)}\nstore_prefix: ${prefix}\n`, { demo: `hosts: ["127.0.0.1:${up.port}"]\nupstream: http\nauth: { type: bearer }\n` });
  const a = await startProxy(dir, { env: { CREDPROXY_SECRET_KEY: OLD } });
  t.equal((await a.connect('bob', 'demo', { credentials: { token: 'bob-token-1' } })).status, 200);
  await a.close();
  const b = await startProxy(dir, { env: { CREDPROXY_SECRET_KEY: '', CREDPROXY_SECRET_KEYS: `default:${OLD},k2:${NEW}` } });
  t.equal((await b.connect('alice', 'demo', { credentials: { token: 'alice-token-1' } })).status, 200);
  await b.admin('PUT', '/api/entities/alice/connections/demo?label=work', { credentials: { token: 'alice-token-2' } });
  await b.close();

  // k2 left out: alice's connections are sealed with it, bob's (default) still opens.
  const c = await startProxy(dir, { env: { CREDPROXY_SECRET_KEY: OLD } });
  t.teardown(() => c.close());
  const listed = (await (await c.admin('GET', '/api/entities/alice/connections')).json()) as { connections: Array<{ label: string | null; status: string; reason: string; fields: string[] }> };
  t.same(listed.connections.map((x) => [x.label, x.status, x.fields]), [[null, 'failed', []], ['work', 'failed', []]], 'the listing works and shows them failed');
  t.match(listed.connections[0]!.reason, /sealed with key "k2", which is not in the keyring/);
  const denied = await viaProxy(c.port, `${up.origin}/x`, { headers: { 'X-Entity-Id': 'alice' } });
  t.equal(denied.status, 424);
  t.match(denied.body.toString(), /cannot be used: the stored credentials are sealed with key \\"k2\\"/);
  t.equal((await viaProxy(c.port, `${up.origin}/x`, { headers: { 'X-Entity-Id': 'bob' } })).status, 200, 'what the key opens is served');
  t.match(c.logs.text, /"entity":"alice","integration":"demo","key_id":"k2"/);
  t.match(c.logs.text, /some stored connections are sealed with keys that are not in the keyring/, 'the start sample warns');
  t.notMatch(c.logs.text, /alice-token|bob-token/);
});
