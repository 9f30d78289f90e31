import { createHash } from 'node:crypto';
import t, { type Test } from 'tap';
import { fetch } from 'undici';
import { authorizeUrlOf, Browser, callbackUrlOf, connectForm, connectInBrowser, refreshTarget } from '../support/browser.js';
import { OAuthServer } from '../support/oauth-server.js';
import { oauthIntegration } from '../support/oauth-config.js';
import { configDir, startProxy, startUpstream, type TestProxy } from '../support/servers.js';

/**
 * The connect flow is bound to the browser that pressed the connect button (RFC 9700 §4.7):
 * a connect link or an authorize URL passed to someone else must never store *their* account
 * under the link's entity. And opening a link shows a page; only its button uses the link.
 * Catalogue: docs/security.md, "Connect flow".
 */

const DESCRIPTION = `<script>alert(1)</script> & "quoted" 'too'`;

interface Setup {
  as: OAuthServer;
  proxy: TestProxy;
  appPort: number;
}

async function setup(t: Test, settings = ''): Promise<Setup> {
  const as = await new OAuthServer().start();
  const api = await startUpstream();
  const other = await startUpstream();
  const app = await startUpstream();
  const dir = configDir(`store: memory\n${settings}connect:\n  allowed_redirects: ["http://127.0.0.1:${app.port}/done"]\n`, {
    demo: oauthIntegration(as, api.port, `  scopes: [read]\ndescription: '${DESCRIPTION.replace(/'/g, "''")}'`),
    other: oauthIntegration(as, other.port, '  scopes: [read]'),
  });
  const proxy = await startProxy(dir);
  t.teardown(async () => {
    await proxy.close();
    await Promise.all([as.close(), api.close(), other.close(), app.close()]);
  });
  return { as, proxy, appPort: app.port };
}

const link = (proxy: TestProxy, entity = 'alice', integration = 'demo', body: unknown = {}, query = '') => proxy.connectLink(entity, integration, body, query);
const status = (proxy: TestProxy, entity = 'alice', integration = 'demo') => proxy.connectionStatus(entity, integration);

/** Browser A pressed the button: the provider's authorize URL, with a state bound to A. */
const startedIn = (browser: Browser, connectUrl: string) => authorizeUrlOf(browser, connectUrl);

async function assertWrongBrowser(t: Test, r: Awaited<ReturnType<Browser['request']>>) {
  t.equal(r.status, 400);
  t.match(r.headers.get('content-type'), /text\/html/, 'a page, whatever the Accept');
  t.equal(r.headers.get('x-credproxy-error'), 'bad_request');
  t.match(await r.text(), /started in another browser.*Start again from the connect link, in the same browser/s);
}

t.test('an authorize URL started in browser A and finished in browser B is refused, and A can still finish', async (t) => {
  const { as, proxy } = await setup(t);
  const a = new Browser();
  const authorize = await startedIn(a, await link(proxy));
  t.equal(await status(proxy), 'initiated');

  // The attacker's authorize URL, consented to in the victim's browser.
  const b = new Browser();
  await assertWrongBrowser(t, await b.follow(authorize));
  t.equal(as.count('authorization_code'), 0, 'no code was exchanged');
  t.equal(await status(proxy), 'initiated', "nothing was stored under alice: not the victim's account");

  // The state was not used up: the browser that started the flow still finishes it.
  const done = await a.follow(authorize);
  t.equal(done.status, 200);
  t.match(await done.text(), /demo is connected/);
  t.equal(await status(proxy), 'active');
});

t.test('a link opened in browser B after A pressed its button is used up, and A’s callback in B is refused', async (t) => {
  const { proxy } = await setup(t);
  const url = await link(proxy);
  const a = new Browser();
  const b = new Browser();
  const cb = await callbackUrlOf(url, a);
  const again = await b.request(url);
  t.equal(again.status, 400, 'the link was used by A’s button');
  t.match(await again.text(), /already used/);
  await assertWrongBrowser(t, await b.request(cb));
  t.equal(await status(proxy), 'initiated');
  t.equal((await a.request(cb)).status, 200, 'A finishes');
  t.equal(await status(proxy), 'active');
});

t.test('a callback without the cookie is refused and consumes nothing', async (t) => {
  const { as, proxy } = await setup(t);
  const a = new Browser();
  const cb = await callbackUrlOf(await link(proxy), a);
  await assertWrongBrowser(t, await new Browser().request(cb));
  // A plain program (no cookie, JSON Accept) is refused the same way.
  const plain = await fetch(cb, { redirect: 'manual' });
  t.equal(plain.status, 400);
  // The cookie's value tampered with, or under the other (https) name.
  const nonce = [...a.cookies('127.0.0.1')].find(([k]) => k === 'credproxy-connect')![1];
  const tampered = new Browser();
  tampered.setCookie('127.0.0.1', 'credproxy-connect', nonce.slice(0, -1) + (nonce.endsWith('A') ? 'B' : 'A'));
  await assertWrongBrowser(t, await tampered.request(cb));
  const renamed = new Browser();
  renamed.setCookie('127.0.0.1', '__Host-credproxy-connect', nonce);
  await assertWrongBrowser(t, await renamed.request(cb));
  t.equal(as.count('authorization_code'), 0);
  t.equal((await a.request(cb)).status, 200, 'the right browser still finishes');
  t.equal(await status(proxy), 'active');
});

t.test('a denied consent in the wrong browser does not mark the connection failed', async (t) => {
  const { as, proxy } = await setup(t);
  const authorize = await startedIn(new Browser(), await link(proxy));
  as.consent = 'deny';
  await assertWrongBrowser(t, await new Browser().follow(authorize));
  t.equal(await status(proxy), 'initiated');
});

t.test("a cookie from the browser's own flow (another integration, another entity) does not open someone else's", async (t) => {
  const { proxy } = await setup(t);
  const a = new Browser();
  const b = new Browser();
  const aliceCb = await callbackUrlOf(await link(proxy, 'alice', 'demo'), a);
  const bobCb = await callbackUrlOf(await link(proxy, 'bob', 'other'), b);
  await assertWrongBrowser(t, await b.request(aliceCb));
  await assertWrongBrowser(t, await a.request(bobCb));
  t.equal(await status(proxy, 'alice', 'demo'), 'initiated');
  t.equal(await status(proxy, 'bob', 'other'), 'initiated');
  t.equal((await b.request(bobCb)).status, 200);
  t.equal((await a.request(aliceCb)).status, 200);
  t.equal(await status(proxy, 'bob', 'other'), 'active');
  t.equal(await status(proxy, 'alice', 'demo'), 'active');
});

t.test('a replayed callback is refused, in the same browser and in another one', async (t) => {
  const { as, proxy } = await setup(t);
  const a = new Browser();
  const cb = await callbackUrlOf(await link(proxy), a);
  t.equal((await a.request(cb)).status, 200);
  const replay = await a.request(cb);
  t.equal(replay.status, 400);
  t.match(await replay.text(), /already used/);
  t.equal((await new Browser().request(cb)).status, 400);
  t.equal(as.count('authorization_code'), 1, 'one code exchange');
});

t.test('two connect pages open in one browser both finish (one nonce per browser)', async (t) => {
  const { proxy } = await setup(t);
  const a = new Browser();
  const one = await a.request(await link(proxy, 'alice', 'demo'));
  const two = await a.request(await link(proxy, 'alice', 'other'));
  t.equal(one.headers.getSetCookie()[0]!.split(';')[0], two.headers.getSetCookie()[0]!.split(';')[0], 'the second page kept the nonce');
  for (const page of [one, two]) {
    const { action, fields } = connectForm(await page.text());
    t.equal((await a.follow(action, { form: fields })).status, 200);
  }
  t.equal(await status(proxy, 'alice', 'demo'), 'active');
  t.equal(await status(proxy, 'alice', 'other'), 'active');
});

t.test('opening the link (GET, HEAD; a preview bot) uses nothing up', async (t) => {
  const { as, proxy } = await setup(t);
  const url = await link(proxy);
  for (let i = 0; i < 3; i++) {
    const r = await fetch(url, { redirect: 'manual' });
    t.equal(r.status, 200, `GET ${i + 1}: the page, no redirect`);
    t.notOk(r.headers.has('location'));
    await r.text();
  }
  t.equal((await fetch(url, { method: 'HEAD' })).status, 200);
  t.equal(as.authorizeRequests.length, 0, 'the provider saw nothing');
  t.equal(await status(proxy), 'initiated');
  t.equal((await connectInBrowser(url)).status, 200, 'the link still works');
  t.equal(await status(proxy), 'active');
});

t.test('the button without the cookie or with a wrong form token is refused and leaves the link usable', async (t) => {
  const { proxy } = await setup(t);
  const url = await link(proxy);
  const a = new Browser();
  const b = new Browser();
  const { action, fields } = connectForm(await (await a.request(url)).text());
  const bForm = connectForm(await (await b.request(url)).text()).fields;
  const refused = async (name: string, browser: Browser, form: Record<string, string>, target = action, headers: Record<string, string> = {}) => {
    const r = await browser.request(target, { form, headers });
    t.equal(r.status, 400, name);
    t.notOk(r.headers.has('location'), `${name}: no redirect`);
    await r.text();
  };
  await refused('no cookie (a cross-site POST: SameSite=Lax keeps it back)', new Browser(), fields);
  await refused('no form token', a, { token: fields.token! });
  await refused('an empty form token', a, { token: fields.token!, csrf: '' });
  await refused('a tampered form token', a, { ...fields, csrf: fields.csrf!.slice(0, -2) + 'xx' });
  await refused("another browser's form token with this browser's cookie", a, { ...fields, csrf: bForm.csrf! });
  await refused("this browser's form token in another browser", b, fields);
  await refused('no link token', a, { csrf: fields.csrf! });
  await refused('the form posted to another integration', a, fields, action.replace('/connect/demo', '/connect/other'));
  const other = connectForm(await (await a.request(await link(proxy, 'alice', 'other'))).text()).fields;
  await refused("another link's form token (same browser)", a, { token: fields.token!, csrf: other.csrf! });
  const json = await fetch(action, { method: 'POST', headers: { 'content-type': 'application/json', cookie: [...a.cookies('127.0.0.1')].map(([k, v]) => `${k}=${v}`).join('; ') }, body: JSON.stringify(fields) });
  t.equal(json.status, 400, 'a JSON body');
  const big = await a.request(action, { form: { ...fields, pad: 'x'.repeat(70_000) } });
  t.equal(big.status, 413, 'an oversized form (over 64 KiB)');
  const long = await a.request(action, { form: { ...fields, pad: 'x'.repeat(10_000) } });
  t.equal(long.status, 400, 'one value over 8192 characters');
  t.equal(await status(proxy), 'initiated');

  const ok = await a.request(action, { form: fields });
  t.equal(ok.status, 200, 'the right browser with its own page still continues');
  t.match(refreshTarget(await ok.text()), /\/authorize\?/);
  t.equal((await b.request(action, { form: bForm })).status, 400, 'and then the link is used up for everyone');
  const logs = proxy.logs.text;
  for (const secret of [a.cookie('127.0.0.1', 'credproxy-connect')!, b.cookie('127.0.0.1', 'credproxy-connect')!, fields.csrf!, bForm.csrf!]) {
    t.notOk(logs.includes(secret), 'no nonce or form token in the logs');
  }
  t.equal((await a.request(action, { form: fields })).status, 400, 'nor again for the browser that used it');
});

t.test('the connect page names the application, the integration and the account, escaped', async (t) => {
  const { proxy, appPort, as } = await setup(t);
  const url = await link(proxy, 'alice', 'demo', { redirect_to: `http://127.0.0.1:${appPort}/done` }, '?label=work');
  const r = await fetch(url);
  const html = await r.text();
  t.match(html, `<dt>Application</dt><dd>127.0.0.1:${appPort}</dd>`, 'the application the user returns to');
  t.match(html, '<dt>Integration</dt><dd>demo: &lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quoted&quot; &#39;too&#39;</dd>');
  t.notMatch(html, '<script>', 'no markup from the description');
  t.match(html, `<dt>You sign in at</dt><dd>${new URL(as.origin).host}</dd>`);
  t.match(html, '<dt>Stored for</dt><dd>alice (connection &quot;work&quot;)</dd>');
  t.match(html, /<button type="submit">Continue to /);
  const plain = await (await fetch(await link(proxy, 'bob'))).text();
  t.match(plain, `<dt>Application</dt><dd>${new URL(proxy.url).host}</dd>`, 'without redirect_to: credproxy itself');
});

t.test('page headers: CSP, no-store, no framing, no referrer; the cookie is HttpOnly and SameSite=Lax', async (t) => {
  const { proxy, as } = await setup(t);
  const r = await fetch(await link(proxy));
  const html = await r.text();
  t.equal(r.headers.get('cache-control'), 'no-store');
  t.equal(r.headers.get('referrer-policy'), 'no-referrer');
  t.equal(r.headers.get('x-frame-options'), 'DENY');
  t.equal(r.headers.get('x-content-type-options'), 'nosniff');
  const csp = Object.fromEntries(r.headers.get('content-security-policy')!.split(';').map((d) => d.trim().split(/\s+/)).map(([k, ...v]) => [k, v]));
  t.same(csp['default-src'], ["'none'"]);
  t.same(csp['frame-ancestors'], ["'none'"]);
  t.same(csp['base-uri'], ["'none'"]);
  t.same(csp['form-action'], [new URL(proxy.url).origin], 'the form posts to credproxy only');
  const style = /<style>([^<]*)<\/style>/.exec(html)![1]!;
  t.same(csp['style-src'], [`'sha256-${createHash('sha256').update(style).digest('base64')}'`], 'the one inline style, by hash');
  t.notMatch(html, /<script/i, 'no script at all');
  const cookie = r.headers.getSetCookie();
  t.equal(cookie.length, 1);
  t.match(cookie[0], /^credproxy-connect=[A-Za-z0-9_-]{43}; Path=\/; Max-Age=600; HttpOnly; SameSite=Lax$/);

  // The button's answer moves on to the provider by a refresh, not a redirect: form-action
  // holds for redirects after a post, and providers hop between their origins.
  const a = new Browser();
  const page = connectForm(await (await a.request(await link(proxy, 'carol'))).text());
  const cont = await a.request(page.action, { form: page.fields });
  t.equal(cont.status, 200);
  t.notOk(cont.headers.has('location'));
  t.match(cont.headers.get('content-security-policy'), /default-src 'none';.*form-action 'none'; frame-ancestors 'none'/);
  t.equal(cont.headers.get('cache-control'), 'no-store');
  t.equal(cont.headers.get('referrer-policy'), 'no-referrer', 'the provider gets no Referer carrying the link');
  const contHtml = await cont.text();
  t.match(refreshTarget(contHtml), new RegExp(`^${as.origin}/authorize\\?`));
  t.match(contHtml, /<a href="http:\/\/127\.0\.0\.1:\d+\/authorize\?[^"]*&amp;[^"]*">Continue to /, 'a link too, escaped');

  // The refusal page and the error pages get the same headers, with no form allowed.
  const cb = await callbackUrlOf(await link(proxy, 'bob'), new Browser());
  const refused = await new Browser().request(cb);
  t.match(refused.headers.get('content-security-policy'), /default-src 'none';.*form-action 'none'; frame-ancestors 'none'/);
  t.equal(refused.headers.get('cache-control'), 'no-store');
});

t.test('with an https public_url the cookie is __Host- prefixed and Secure, and only that name counts', async (t) => {
  const { proxy } = await setup(t, 'public_url: https://credproxy.test\n');
  const url = new URL(await link(proxy));
  t.equal(url.origin, 'https://credproxy.test');
  const local = `${proxy.url}${url.pathname}${url.search}`;
  const a = new Browser();
  const page = await a.request(local);
  t.match(page.headers.getSetCookie()[0], /^__Host-credproxy-connect=[A-Za-z0-9_-]{43}; Path=\/; Max-Age=600; HttpOnly; SameSite=Lax; Secure$/);
  const { action, fields } = connectForm(await page.text());
  t.equal(action, 'https://credproxy.test/connect/demo', 'the form posts to public_url');
  const localAction = `${proxy.url}/connect/demo`;
  const renamed = new Browser();
  renamed.setCookie('127.0.0.1', 'credproxy-connect', a.cookie('127.0.0.1', '__Host-credproxy-connect')!);
  t.equal((await renamed.request(localAction, { form: fields })).status, 400, 'the unprefixed name is not read');
  t.equal((await a.request(localAction, { form: fields })).status, 200);
});
