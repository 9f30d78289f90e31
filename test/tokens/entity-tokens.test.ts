import t from 'tap';
import { createHash } from 'node:crypto';
import { issueToken, revokeToken, verifyToken } from '../../src/tokens/entity-tokens.js';
import { configDir, startProxy } from '../support/servers.js';

t.test('issue, verify, expire, revoke; only the hash is stored', async (t) => {
  const proxy = await startProxy(configDir('store: memory\n'));
  t.teardown(() => proxy.close());
  const kv = proxy.runtime.store.kv;
  const now = Date.now();
  const issued = await issueToken(kv, 'alice', { integrations: ['svc'], ttlSeconds: 60 }, now);
  t.match(issued.token, /^cpx_[A-Za-z0-9_-]{43}$/);
  t.equal(issued.expires_at, now + 60_000);
  const record = await verifyToken(kv, issued.token, now + 1000);
  t.same(record, { id: issued.id, entity: 'alice', integrations: ['svc'], expires_at: now + 60_000 });
  const hash = createHash('sha256').update(issued.token).digest('hex');
  t.ok(await kv.get(`entity-token:${hash}`), 'stored under its hash');
  t.notMatch((await kv.get(`entity-token:${hash}`))!, issued.token.slice(4), 'the token itself is not in the record');

  await t.rejects(verifyToken(kv, issued.token, now + 60_000), { code: 'entity_denied' }, 'expired at expires_at');
  await t.rejects(verifyToken(kv, `cpx_${'A'.repeat(43)}`), { code: 'entity_denied' }, 'forged');
  await t.rejects(verifyToken(kv, 'cpx_short'), { code: 'entity_denied' }, 'malformed');

  t.equal(await revokeToken(kv, issued.id), true);
  t.equal(await revokeToken(kv, issued.id), false, 'twice: nothing left');
  await t.rejects(verifyToken(kv, issued.token, now + 1000), { code: 'entity_denied' }, 'revoked');
});
