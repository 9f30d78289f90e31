import pino from 'pino';
import t, { type Test } from 'tap';
import type { Settings } from '../../src/config/types.js';
import { createLink, FLOW_TTL_MS, kvCall, peekLink, takeLink } from '../../src/oauth/links.js';
import { openStore } from '../../src/store/open.js';
import { SECRET_KEY } from '../support/servers.js';
import { sqliteUrl } from '../support/sqlite.js';

// The links through the admin API and a browser are in test/oauth/connect.test.ts; these are
// the rules of the link token itself, on the default store.
const ADMIN = 'admin-token-for-links-0123456789';

async function kvOf(t: Test) {
  const { store } = await openStore({ store: sqliteUrl(t), store_prefix: 'credproxy' } as Settings, { CREDPROXY_SECRET_KEY: SECRET_KEY }, pino({ level: 'silent' }));
  t.teardown(() => store.close());
  return store.kv;
}

const record = { entity: 'alice', integration: 'demo', params: { tenant: 't1' }, scopes: ['read'] };

t.test('a link is peeked any number of times, taken once', async (t) => {
  const kv = await kvOf(t);
  const { token, expiresAt } = await createLink(kv, ADMIN, record, 1_000_000_000_000);
  t.equal(expiresAt, 1_000_000_000_000 + FLOW_TTL_MS);
  t.notMatch(token, ADMIN);
  const now = await createLink(kv, ADMIN, record);
  const peeked = await peekLink(kv, ADMIN, now.token, 'demo');
  t.same(peeked.record, record);
  t.same((await peekLink(kv, ADMIN, now.token, 'demo')).id, peeked.id, 'a GET (or a mail scanner) does not use it up');
  t.same((await takeLink(kv, ADMIN, now.token, 'demo')).record, record);
  await t.rejects(takeLink(kv, ADMIN, now.token, 'demo'), { code: 'bad_request', message: /already used or has expired/ });
  await t.rejects(peekLink(kv, ADMIN, now.token, 'demo'), { message: /already used/ });
});

t.test('forged, tampered, expired and misdirected links are 400s that say which', async (t) => {
  const kv = await kvOf(t);
  const { token } = await createLink(kv, ADMIN, record);
  await t.rejects(takeLink(kv, 'another-deployments-admin-token', token, 'demo'), { code: 'bad_request', message: 'this connect link is not valid; ask for a new one' });
  const [h, p, s] = token.split('.');
  const otherPayload = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p!, 'base64url').toString()), sub: 'mallory' })).toString('base64url');
  await t.rejects(takeLink(kv, ADMIN, `${h}.${otherPayload}.${s}`, 'demo'), { message: /is not valid/ }, 'tampered');
  await t.rejects(takeLink(kv, ADMIN, 'not-a-jwt', 'demo'), { message: /is not valid/ });
  await t.rejects(takeLink(kv, ADMIN, token, 'other'), { message: 'this connect link is for another integration than "other"' });
  const old = await createLink(kv, ADMIN, record, Date.now() - FLOW_TTL_MS - 60_000);
  await t.rejects(takeLink(kv, ADMIN, old.token, 'demo'), { message: 'this connect link has expired; ask for a new one' });
  t.same((await takeLink(kv, ADMIN, token, 'demo')).record, record, 'the refusals above used nothing up');
});

t.test('take: a check that refuses runs before anything is consumed', async (t) => {
  const kv = await kvOf(t);
  const { token } = await createLink(kv, ADMIN, record);
  const refuse = () => {
    throw new Error('wrong browser');
  };
  await t.rejects(takeLink(kv, ADMIN, token, 'demo', refuse), /wrong browser/);
  t.ok(await takeLink(kv, ADMIN, token, 'demo'), 'still usable');
});

t.test('a store failure is store_unavailable (503), not a 500', async (t) => {
  await t.rejects(
    kvCall(() => Promise.reject(new Error('connection refused'))),
    { code: 'store_unavailable' },
  );
});
