import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHmac, hkdfSync } from 'node:crypto';
import t, { type Test } from 'tap';
import { ADMIN, configDir, startProxy, type TestProxy } from '../../support/servers.js';
import { get, post, signIn } from '../../support/dashboard.js';

/**
 * The dashboard's sign-in and forms over plain HTTP: what a wrong token, a forged form, an
 * old or foreign cookie get, and the headers every page carries.
 */

const GH = 'hosts: [gh.example]\nauth:\n  type: oauth2\n  authorize_url: https://gh.example/authorize\n  token_url: https://gh.example/token\n  client_id: id\n  client_secret: s\n  scopes: [repo]\n';

async function proxy(t: Test, settings = ''): Promise<TestProxy> {
  const p = await startProxy(configDir(`store: memory\n${settings}`, { gh: GH }));
  t.teardown(() => p.close());
  return p;
}

function assertPageHeaders(t: Test, r: Response, what: string) {
  t.equal(r.headers.get('cache-control'), 'no-store', `${what}: no-store`);
  t.match(r.headers.get('content-security-policy'), /^default-src 'none'; style-src 'sha256-[^']+' 'sha256-[^']+'; form-action 'self'; frame-ancestors 'none'/, `${what}: strict CSP`);
  t.equal(r.headers.get('x-frame-options'), 'DENY', `${what}: not framed`);
}

t.test('a wrong admin token: a clear message, no cookie', async (t) => {
  const p = await proxy(t);
  const r = await post(p, '/ui/sign-in', { token: 'not-the-admin-token' });
  t.equal(r.status, 401);
  t.equal(r.headers.get('set-cookie'), null, 'no cookie');
  t.match(await r.text(), 'That is not the admin token. Nothing was signed in.');
  assertPageHeaders(t, r, 'refused sign-in');
  t.notMatch(p.logs.text, 'not-the-admin-token', 'the given token is not logged');
});

t.test('guessing the token is held to 10 tries a minute per address: then 429 with Retry-After, even for the right token, and no cookie', async (t) => {
  const p = await proxy(t);
  for (let i = 0; i < 10; i++) t.equal((await post(p, '/ui/sign-in', { token: `guess-${i}` })).status, 401, `try ${i + 1}: wrong token`);
  const r = await post(p, '/ui/sign-in', { token: ADMIN });
  t.equal(r.status, 429, 'the eleventh try is refused before the token is compared');
  t.equal(r.headers.get('x-credproxy-error'), 'rate_limited');
  t.match(r.headers.get('retry-after'), /^\d+$/, 'says when to try again');
  t.equal(r.headers.get('set-cookie'), null, 'no cookie');
  t.match(await r.text(), /too many sign-in attempts from this address; try again in \d+ s/);
  assertPageHeaders(t, r, 'refused for rate');
  t.match(p.logs.text, 'dashboard sign-in refused: too many attempts');
});

t.test('the right token: an HttpOnly SameSite=Strict cookie; every page carries CSP and no-store', async (t) => {
  const p = await proxy(t);
  await p.connect('alice', 'gh', { credentials: { access_token: 'secret-token-value' } });
  const r = await post(p, '/ui/sign-in', { token: ADMIN });
  t.equal(r.status, 303);
  t.equal(r.headers.get('location'), '/ui/integrations');
  t.match(r.headers.get('set-cookie'), /^credproxy-ui=[\w-]{43}\.\d{13}\.[\w-]{43}; Path=\/; Max-Age=28800; HttpOnly; SameSite=Strict$/);
  const { cookie } = await signIn(p);
  for (const path of ['/ui/sign-in', '/ui/integrations', '/ui/entities', '/ui/entities?entity=alice&status=active', '/ui/entities/alice/connections/gh', '/ui/entities/alice/connections/gh/delete', '/ui/tokens']) {
    const page = await get(p, path, path === '/ui/sign-in' ? undefined : cookie);
    t.equal(page.status, 200, path);
    assertPageHeaders(t, page, path);
    t.notMatch(await page.text(), 'secret-token-value', `${path}: no secret`);
  }
  t.equal((await get(p, '/ui/integrations')).headers.get('location'), '/ui/sign-in', 'without the cookie: to the sign-in page');
});

t.test('under an https public_url the cookie is __Host- and Secure', async (t) => {
  const p = await proxy(t, 'public_url: https://credproxy.example\n');
  const r = await post(p, '/ui/sign-in', { token: ADMIN });
  t.match(r.headers.get('set-cookie'), /^__Host-credproxy-ui=.*; Path=\/; .*HttpOnly; SameSite=Strict; Secure$/);
});

t.test('a forged or missing CSRF token is refused and nothing changes', async (t) => {
  const p = await proxy(t);
  await p.connect('alice', 'gh', { credentials: { access_token: 'x' } });
  const { cookie, csrf } = await signIn(p);
  for (const fields of [{ csrf: 'forged' }, {}, { csrf: csrf.slice(0, -1) }] as Array<Record<string, string>>) {
    const r = await post(p, '/ui/entities/alice/connections/gh/delete', fields, cookie);
    t.equal(r.status, 400);
    t.match(await r.text(), /CSRF token.*nothing was changed/);
  }
  const other = await post(p, '/ui/entities/alice/connections/gh/delete', { csrf }, cookie, { origin: 'https://evil.example' });
  t.equal(other.status, 400, 'another origin, even with the token');
  t.equal((await p.admin('GET', '/api/entities/alice/connections/gh')).status, 200, 'the connection is still there');
  const ok = await post(p, '/ui/entities/alice/connections/gh/delete', { csrf }, cookie);
  t.equal(ok.status, 303, 'the real form deletes');
  t.equal((await p.admin('GET', '/api/entities/alice/connections/gh')).status, 404);
});

t.test('a signed-out, expired, tampered or foreign cookie is refused', async (t) => {
  const p = await proxy(t);
  const { cookie, csrf } = await signIn(p);
  const [name, value] = cookie.split('=') as [string, string];
  const [id, exp] = value.split('.') as [string, string];
  // Signed with another instance's admin token: the same shape, another key.
  const key = Buffer.from(hkdfSync('sha256', 'another-admin-token-0123456789', 'credproxy', 'dashboard-session v1', 32));
  const foreign = `${name}=${id}.${exp}.${createHmac('sha256', key).update(`${id}.${exp}`).digest('base64url')}`;
  const later = `${name}=${id}.${Number(exp) + 1000}.${value.split('.')[2]}`;
  for (const [what, c] of [['foreign', foreign], ['tampered expiry', later], ['garbage', `${name}=x`]] as const) {
    t.equal((await get(p, '/ui/integrations', c)).headers.get('location'), '/ui/sign-in', `${what}: back to sign-in`);
    const r = await post(p, '/ui/tokens/revoke', { csrf, id: 'tok_x' }, c);
    t.equal(r.status, 401, `${what}: a form is refused`);
  }
  const out = await post(p, '/ui/sign-out', { csrf }, cookie);
  t.equal(out.status, 200);
  t.match(out.headers.get('set-cookie'), /^credproxy-ui=; Path=\/; Max-Age=0/);
  t.equal((await get(p, '/ui/integrations', cookie)).headers.get('location'), '/ui/sign-in', 'the signed-out cookie no longer works');
  const r = await post(p, '/ui/tokens/revoke', { csrf, id: 'tok_x' }, cookie);
  t.equal(r.status, 401);
  t.match(await r.text(), 'you are not signed in');
});

t.test('an expired session is refused', async (t) => {
  const p = await proxy(t);
  const { cookie } = await signIn(p);
  const [name, value] = cookie.split('=') as [string, string];
  const [id] = value.split('.') as [string];
  // A cookie whose signed expiry has passed (the store's TTL would have dropped it too).
  const past = Date.now() - 1000;
  const key = Buffer.from(hkdfSync('sha256', ADMIN, 'credproxy', 'dashboard-session v1', 32));
  const expired = `${name}=${id}.${past}.${createHmac('sha256', key).update(`${id}.${past}`).digest('base64url')}`;
  t.equal((await get(p, '/ui/integrations', expired)).headers.get('location'), '/ui/sign-in');
});

t.test('ui.enabled: false turns the dashboard off (unset, it is on: the test listens on loopback)', async (t) => {
  const off = await proxy(t, 'ui: { enabled: false }\n');
  const r = await get(off, '/ui/sign-in');
  t.equal(r.status, 404);
  t.match(await r.text(), 'the dashboard is off here (ui.enabled)');
  t.equal((await post(off, '/ui/sign-in', { token: ADMIN })).headers.get('set-cookie'), null);
});

t.test('revoking an entity token and making a connect link', async (t) => {
  const p = await proxy(t);
  const issued = (await (await p.admin('POST', '/api/entities/alice/tokens', {})).json()) as { id: string; token: string };
  const { cookie, csrf } = await signIn(p);
  const r = await post(p, '/ui/tokens/revoke', { csrf, id: issued.id }, cookie);
  t.equal(r.status, 200);
  t.match(await r.text(), `Token <code>${issued.id}</code> is revoked`);
  t.equal((await post(p, '/ui/tokens/revoke', { csrf, id: issued.id }, cookie)).status, 404, 'a second time: no live token');
  const link = await post(p, '/ui/entities/alice/connect', { csrf, integration: 'gh', label: 'work' }, cookie);
  t.equal(link.status, 200);
  t.match(await link.text(), new RegExp(`<input id="link" type="text" readonly value="${p.url}/connect/gh\\?token=`));
  t.match(await (await p.admin('GET', '/api/entities/alice/connections/gh?label=work')).json(), { status: 'initiated' });
  const bad = await post(p, '/ui/entities/alice/connect', { csrf, integration: 'gh', label: 'bad label!' }, cookie);
  t.equal(bad.status, 400);
});

t.test("the integrations page shows the last reload's problems at file:line", async (t) => {
  const dir = configDir('store: memory\n', { gh: GH });
  const p = await startProxy(dir);
  t.teardown(() => p.close());
  const { cookie } = await signIn(p);
  t.notMatch(await (await get(p, '/ui/integrations', cookie)).text(), 'config reload', 'no reload yet: nothing said');
  writeFileSync(join(dir, 'integrations', 'broken.yaml'), 'hosts: [broken.example]\nauth: { type: nope }\n');
  t.notOk(p.reload().ok);
  const page = await (await get(p, '/ui/integrations', cookie)).text();
  t.match(page, /The last config reload \(.*\) failed; the config below is the last good one, still live/);
  t.match(page, /<li><code>[^<]*broken\.yaml:2: [^<]+<\/code><\/li>/);
  rmSync(join(dir, 'integrations', 'broken.yaml'));
  t.ok(p.reload().ok);
  t.match(await (await get(p, '/ui/integrations', cookie)).text(), /The last config reload \(.*\) was applied/);
});

t.test('bad input in the forms and the search: a clear message, nothing stored', async (t) => {
  const p = await proxy(t, 'limits: { admin_body_bytes: 2048 }\n');
  const { cookie, csrf } = await signIn(p);
  const cases: Array<[string, Record<string, string>, number, RegExp]> = [
    ['/ui/entities/alice/connect', { csrf, integration: 'gh', label: 'x'.repeat(65) }, 400, /label/],
    ['/ui/entities/alice/connect', { csrf, integration: 'gh', label: 'a\u0001b' }, 400, /label/],
    ['/ui/entities/alice/connect', { csrf, integration: 'nope' }, 404, /no integration named/],
    ['/ui/entities/-bad/connect', { csrf, integration: 'gh' }, 400, /entity id/],
    ['/ui/entities/alice/connect', { csrf, integration: 'gh', pad: 'x'.repeat(3000) }, 413, /over 2048 bytes/],
    ['/ui/tokens/revoke', { csrf, id: 'tok\n1' }, 400, /a token id is letters/],
    ['/ui/tokens/revoke', { csrf, id: 'x'.repeat(200) }, 400, /up to 128/],
  ];
  for (const [path, fields, status, message] of cases) {
    const r = await post(p, path, fields, cookie);
    t.equal(r.status, status, `${path} ${JSON.stringify(fields).slice(0, 60)}`);
    t.match(await r.text(), message);
    t.equal(r.headers.get('cache-control'), 'no-store');
  }
  const dup = await fetch(`${p.url}/ui/tokens/revoke`, { method: 'POST', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' }, body: `csrf=${csrf}&id=a&id=b` });
  t.equal(dup.status, 400);
  t.match(await dup.text(), 'the form field id is given more than once');
  const json = await fetch(`${p.url}/ui/tokens/revoke`, { method: 'POST', headers: { cookie, 'content-type': 'application/json' }, body: JSON.stringify({ csrf, id: 'a' }) });
  t.equal(json.status, 400, 'only form posts');
  const search = await get(p, `/ui/entities?entity=${encodeURIComponent('a\u0007b')}`, cookie);
  t.equal(search.status, 400);
  t.match(await search.text(), /entity id/);
  t.equal((await p.admin('GET', '/api/entities/alice/connections')).status, 200);
  t.same(((await (await p.admin('GET', '/api/entities/alice/connections')).json()) as { connections: unknown[] }).connections, [], 'nothing stored');
});
