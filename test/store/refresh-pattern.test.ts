import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import type { Settings } from '../../src/config/types.js';
import { lockedUpdate, WriteBack } from '../../src/store/locked-update.js';
import { openStore } from '../../src/store/open.js';
import type { Connection, ConnectionStore } from '../../src/store/types.js';
import { SECRET_KEY, startUpstream } from '../support/servers.js';
import { cleanPrefix, REDIS_URL, uniquePrefix } from '../support/redis.js';

/**
 * The cross-instance refresh as the OAuth code is meant to use it (an in-process
 * single-flight per instance around lockedUpdate), against a real token endpoint that is
 * slow (300 ms) and rotates refresh tokens, so any second refresh would fail with
 * invalid_grant. 200 concurrent callers over two store instances.
 */
t.test('200 concurrent callers over two instances: one token endpoint call, every caller gets the new token', async (t) => {
  let valid = 'rt-0';
  let calls = 0;
  const tokenEndpoint = await startUpstream((_req, res, body) => {
    calls++;
    const form = new URLSearchParams(body.toString('utf8'));
    void sleep(300).then(() => {
      if (form.get('grant_type') !== 'refresh_token' || form.get('refresh_token') !== valid) {
        res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'invalid_grant' }));
        return;
      }
      valid = `rt-${calls}`;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: `at-${calls}`, refresh_token: valid, expires_in: 3600 }));
    });
  });
  t.teardown(() => tokenEndpoint.close());

  const prefix = uniquePrefix();
  t.teardown(() => cleanPrefix(prefix));
  const env = { CREDPROXY_SECRET_KEY: SECRET_KEY, CREDPROXY_ADMIN_TOKEN: 'admin-token-for-refresh-tests' };
  const stores: ConnectionStore[] = [];
  const writeBacks: WriteBack[] = [];
  for (let i = 0; i < 2; i++) {
    const { store } = await openStore({ store: REDIS_URL, store_prefix: prefix } as Settings, env, pino({ level: 'silent' }));
    t.teardown(() => store.close());
    stores.push(store);
    writeBacks.push(new WriteBack(store, undefined));
  }
  await stores[0]!.put({
    entity: 'alice',
    integration: 'demo',
    scheme: 'oauth2',
    params: {},
    status: 'active',
    credentials: { access_token: 'at-0', refresh_token: 'rt-0' },
    expires_at: Date.now() + 10_000, // within the 60 s refresh margin
    created_at: 1,
    updated_at: 1,
  });

  const expiresSoon = (c: Connection) => (c.expires_at ?? 0) < Date.now() + 60_000;
  async function refresh(store: ConnectionStore, seen: Connection): Promise<Connection | undefined> {
    const r = await lockedUpdate(store, seen.entity, seen.integration, {
      // Still the token this caller saw as stale? Otherwise another instance refreshed.
      needed: (current) => current.credentials.access_token === seen.credentials.access_token,
      update: async (current) => {
        const res = await fetch(`${tokenEndpoint.origin}/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: current.credentials.refresh_token! }),
        });
        const tok = (await res.json()) as { access_token: string; refresh_token: string; expires_in: number; error?: string };
        if (!res.ok) throw new Error(tok.error);
        const now = Date.now();
        return { ...current, credentials: { access_token: tok.access_token, refresh_token: tok.refresh_token }, expires_at: now + tok.expires_in * 1000, updated_at: now };
      },
    }, { writeBack: writeBacks[stores.indexOf(store)]! });
    return r.connection;
  }
  // One refresh in flight per connection per instance (what the OAuth code does in-process).
  const inflight = stores.map(() => new Map<string, Promise<Connection | undefined>>());
  async function accessToken(i: number): Promise<string | undefined> {
    const store = stores[i]!;
    let c = await store.get('alice', 'demo');
    if (c && expiresSoon(c)) {
      const key = `${c.entity}\n${c.integration}`;
      let p = inflight[i]!.get(key);
      if (!p) {
        p = refresh(store, c).finally(() => inflight[i]!.delete(key));
        inflight[i]!.set(key, p);
      }
      c = await p;
    }
    return c?.credentials.access_token;
  }

  const tokens = await Promise.all(Array.from({ length: 200 }, (_, i) => accessToken(i % 2)));
  t.equal(calls, 1, 'exactly one refresh in total');
  t.same(new Set(tokens), new Set(['at-1']), 'all 200 callers got the new access token');
  t.equal((await stores[1]!.get('alice', 'demo', { fresh: true }))?.credentials.refresh_token, 'rt-1', 'the rotated refresh token is stored');
});
