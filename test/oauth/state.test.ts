import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import t, { type Test } from 'tap';
import type { Settings } from '../../src/config/types.js';
import { FLOW_TTL_MS } from '../../src/oauth/links.js';
import { peekState, saveState, takeState } from '../../src/oauth/state.js';
import { openStore } from '../../src/store/open.js';
import { SECRET_KEY } from '../support/servers.js';

/** The default store (SQLite) in a temp folder: flow states live in its key-value table. */
async function kvOf(t: Test) {
  const dir = mkdtempSync(join(tmpdir(), 'credproxy-state-'));
  const { store } = await openStore({ store: `sqlite:${join(dir, 'credproxy.db')}`, store_prefix: 'credproxy' } as Settings, { CREDPROXY_SECRET_KEY: SECRET_KEY }, pino({ level: 'silent' }));
  t.teardown(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return store.kv;
}

const flow = { entity: 'alice', integration: 'demo', params: { tenant: 't1' }, verifier: 'v'.repeat(43), scopes: ['read'] };

t.test('a saved state is a long random value; peek leaves it, take consumes it', async (t) => {
  const kv = await kvOf(t);
  const state = await saveState(kv, flow, 1000);
  t.match(state, /^[A-Za-z0-9_-]{40,}$/);
  t.not(await saveState(kv, flow, 1000), state, 'every flow its own state');
  t.same(await peekState(kv, state, 2000), { ...flow, created_at: 1000 });
  t.same(await takeState(kv, state, 2000), { ...flow, created_at: 1000 }, 'still there after a peek');
  await t.rejects(takeState(kv, state, 2000), { code: 'bad_request', message: /unknown, expired or already used/ }, 'single use');
});

t.test('missing, malformed and unknown states are 400s that say which', async (t) => {
  const kv = await kvOf(t);
  await t.rejects(takeState(kv, null), { code: 'bad_request', message: 'the callback carries no state' });
  await t.rejects(takeState(kv, ''), { code: 'bad_request', message: 'the callback carries no state' });
  await t.rejects(takeState(kv, 'short'), { code: 'bad_request', message: /unknown/ });
  await t.rejects(takeState(kv, 'a b c d e f g h i j k l m n'), { code: 'bad_request', message: /unknown/ });
  await t.rejects(peekState(kv, 'x'.repeat(43)), { code: 'bad_request', message: /unknown/ });
});

t.test('a state older than the flow TTL is refused even if the store still has it', async (t) => {
  const kv = await kvOf(t);
  const now = Date.now();
  const state = await saveState(kv, flow, now - FLOW_TTL_MS - 1);
  await t.rejects(peekState(kv, state, now), { message: /expired/ });
  const ok = await saveState(kv, flow, now - FLOW_TTL_MS + 1000);
  t.equal((await takeState(kv, ok, now)).entity, 'alice', 'just inside the TTL');
});
