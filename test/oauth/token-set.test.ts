import t from 'tap';
import { applyTokenSet } from '../../src/oauth/token-set.js';

const now = 1_700_000_000_000;

t.test('a full response replaces token, refresh token, expiry and scopes', async (t) => {
  const r = applyTokenSet({ credentials: { access_token: 'a0', refresh_token: 'r0' }, scopes: ['old'] }, { access_token: 'a1', refresh_token: 'r1', expires_in: 60, scope: 'read write' }, now);
  t.same(r, { credentials: { access_token: 'a1', refresh_token: 'r1' }, expires_at: now + 60_000, scopes: ['read', 'write'] });
});

t.test('no refresh token in the response keeps the stored one; none anywhere leaves none', async (t) => {
  const kept = applyTokenSet({ credentials: { access_token: 'a0', refresh_token: 'r0' } }, { access_token: 'a1' }, now);
  t.equal(kept.credentials.refresh_token, 'r0');
  const none = applyTokenSet(undefined, { access_token: 'a1' }, now);
  t.same(none.credentials, { access_token: 'a1' });
  t.notOk('refresh_token' in none.credentials);
});

t.test('no expires_in: no expiry (only a refused token triggers a refresh)', async (t) => {
  t.equal(applyTokenSet(undefined, { access_token: 'a' }, now).expires_at, undefined);
});

t.test('scope: comma or space separated; absent keeps the previous scopes', async (t) => {
  t.same(applyTokenSet(undefined, { access_token: 'a', scope: 'a,b  c' }, now).scopes, ['a', 'b', 'c']);
  t.same(applyTokenSet({ credentials: {}, scopes: ['x'] }, { access_token: 'a' }, now).scopes, ['x']);
});

t.test('other stored credential fields survive (client-specific extras)', async (t) => {
  const r = applyTokenSet({ credentials: { access_token: 'a0', instance_url: 'https://x' } }, { access_token: 'a1' }, now);
  t.same(r.credentials, { access_token: 'a1', instance_url: 'https://x' });
});
