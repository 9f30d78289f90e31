import t, { type Test } from 'tap';
import type { BrowserContext, Page } from 'playwright-core';
import { createLink, FLOW_TTL_MS } from '../../src/oauth/links.js';
import type { KeyValue } from '../../src/store/types.js';
import { computedStyle, chromiumForFile, DESKTOP, problems, watchConsole } from '../support/chromium.js';
import { OAuthServer } from '../support/oauth-server.js';
import { oauthIntegration } from '../support/oauth-config.js';
import { ADMIN, configDir, startProxy, startUpstream, type TestProxy } from '../support/servers.js';

/**
 * The connect flow's pages in a real Chromium, as a user goes through them: open the link,
 * read the page, press Continue (a plain form post), consent at the provider (on another
 * site, provider.test), come back to the callback. With and without JavaScript: the pages
 * have none and must not need any. The strict CSP must not block the pages' own style.
 * Screenshots go to a temporary folder, and to $CREDPROXY_SCREENSHOTS when it is set.
 */

// No hyphen or space to break at: it must still wrap on a phone, not widen the page.
const ENTITY = 'user:0123456789abcdef0123456789abcdef0123456789abcdef@tenant.example';
const LABEL = 'work';
const DESCRIPTION = 'Demo API for the browser test, with a description long enough to wrap on a phone';

const { browser, screenshot } = chromiumForFile(t, '');

interface Setup {
  as: OAuthServer;
  proxy: TestProxy;
  provider: string;
}

async function setup(t: Test): Promise<Setup> {
  const as = await new OAuthServer().start();
  as.consentMode = 'page';
  const api = await startUpstream();
  // The browser meets the provider on another site than credproxy, as it would for real.
  const provider = `provider.test:${as.port}`;
  const integration = oauthIntegration(as, api.port, `  scopes: [read]\ndescription: ${DESCRIPTION}`).replace(`${as.origin}/authorize`, `http://${provider}/authorize`);
  const proxy = await startProxy(configDir('store: memory\n', { demo: integration }));
  t.teardown(async () => {
    await proxy.close();
    await Promise.all([as.close(), api.close()]);
  });
  return { as, proxy, provider };
}

const link = (proxy: TestProxy) => proxy.connectLink(ENTITY, 'demo', {}, `?label=${LABEL}`);

async function stored(proxy: TestProxy): Promise<string> {
  const r = await proxy.admin('GET', `/api/entities/${ENTITY}/connections/demo?label=${LABEL}`);
  return r.status === 404 ? 'none' : ((await r.json()) as { status: string }).status;
}

async function open(t: Test, javaScriptEnabled: boolean): Promise<{ context: BrowserContext; page: Page; console: string[] }> {
  const context = await browser().newContext({ javaScriptEnabled, viewport: DESKTOP });
  t.teardown(() => context.close());
  const page = await context.newPage();
  return { context, page, console: watchConsole(page) };
}

/** The page at desktop and phone widths, saved; a phone must not have to scroll sideways. */
/** The computed style proves the stylesheet applied (the CSP allows it by hash only). */
async function assertStyled(t: Test, page: Page, name: string): Promise<void> {
  const body = await computedStyle(page.locator('body'), 'maxWidth');
  t.equal(body, '576px', `${name}: the body is 36em wide at most, from the page's stylesheet`);
}

async function assertButtonStyled(t: Test, page: Page): Promise<void> {
  const button = page.getByRole('button', { name: /^Continue to / });
  const bg = await computedStyle(button, 'backgroundColor');
  const fg = await computedStyle(button, 'color');
  t.equal(bg, 'rgb(29, 78, 216)', "the button's own background (#1d4ed8), not the browser's grey");
  t.equal(fg, 'rgb(255, 255, 255)', 'white text on it');
}

const dd = (page: Page, term: string) => page.locator(`dt:text-is("${term}") + dd`);

for (const javaScriptEnabled of [false, true]) {
  const js = javaScriptEnabled ? 'with JavaScript' : 'without JavaScript';

  t.test(`a user connects an account in Chromium ${js}`, async (t) => {
    const { as, proxy, provider } = await setup(t);
    const url = await link(proxy);
    const { context, page, console } = await open(t, javaScriptEnabled);

    const opened = await page.goto(url);
    t.equal(opened?.status(), 200);
    await page.getByRole('heading', { name: 'Connect demo' }).waitFor();
    t.equal(await dd(page, 'Application').innerText(), new URL(proxy.url).host, 'the application: credproxy itself (no redirect_to)');
    t.equal(await dd(page, 'Integration').innerText(), `demo: ${DESCRIPTION}`);
    t.equal(await dd(page, 'You sign in at').innerText(), provider);
    t.equal(await dd(page, 'Stored for').innerText(), `${ENTITY} (connection "${LABEL}")`);
    t.ok(await page.getByText('nothing happens until you press the button').isVisible());
    t.equal(as.authorizeRequests.length, 0, 'opening the page asked the provider nothing');
    const [cookie] = await context.cookies(proxy.url);
    t.match(cookie, { name: 'credproxy-connect', httpOnly: true, sameSite: 'Lax' }, 'the browser kept the binding cookie, out of reach of scripts');
    await assertStyled(t, page, 'connect page');
    await assertButtonStyled(t, page);
    if (!javaScriptEnabled) await screenshot(t, page, 'connect-page');

    // A plain form post, then the continue page's refresh to the provider's consent page.
    // One run uses the keyboard: the button is the first thing Tab reaches.
    if (javaScriptEnabled) {
      await page.keyboard.press('Tab');
      await page.keyboard.press('Enter');
    } else {
      await page.getByRole('button', { name: `Continue to ${provider}` }).click();
    }
    await page.waitForURL((u) => u.host === provider && u.pathname === '/authorize');
    await page.getByRole('heading', { name: 'Test provider' }).waitFor();
    t.equal(await stored(proxy), 'initiated', 'the button used the link; nothing connected yet');

    await page.getByRole('button', { name: 'Allow' }).click();
    await page.waitForURL((u) => u.pathname === '/connect/callback');
    await page.getByRole('heading', { name: 'Connected' }).waitFor();
    t.match(await page.locator('body').innerText(), `demo is connected as your "${LABEL}" account`);
    await assertStyled(t, page, 'success page');
    if (!javaScriptEnabled) await screenshot(t, page, 'success-page');

    t.equal(await stored(proxy), 'active', 'the admin API shows the connection');
    t.equal(as.count('authorization_code'), 1, 'one code exchange');
    t.same(problems(console), [], 'no CSP violation or other console problem');

    // The used link, opened again, says so.
    await page.goto(url);
    await page.getByRole('heading', { name: 'Connection not completed' }).waitFor();
    t.match(await page.locator('body').innerText(), /^This connect link was already used or has expired; ask for a new one\.$/m);
    await assertStyled(t, page, 'used-link page');
    if (!javaScriptEnabled) await screenshot(t, page, 'used-link-page');
    t.same(problems(console), []);
  });
}

t.test('the callback opened in another browser (no cookie) asks to start again and stores nothing', async (t) => {
  const { as, proxy, provider } = await setup(t);
  const a = await open(t, false);
  await a.page.goto(await link(proxy));
  await a.page.getByRole('button', { name: `Continue to ${provider}` }).click();
  await a.page.waitForURL((u) => u.host === provider);
  // Hold A's way back to credproxy: its callback URL is what someone could pass on. The
  // provider's redirect is read here (route handlers do not see redirects) and not followed.
  let resolveHeld: (url: string) => void = () => {};
  const held = new Promise<string>((resolve) => (resolveHeld = resolve));
  await a.page.route(
    (u) => u.host === provider && u.pathname === '/authorize',
    async (route) => {
      if (route.request().method() !== 'POST') return route.continue();
      const r = await route.fetch({ url: `${as.origin}/authorize`, maxRedirects: 0 });
      resolveHeld(r.headers().location!);
      await route.fulfill({ status: 204 });
    },
  );
  await a.page.getByRole('button', { name: 'Allow' }).click();
  const callback = await held;
  t.match(callback, `${proxy.url}/connect/callback?`);

  const b = await open(t, false);
  const r = await b.page.goto(callback);
  t.equal(r?.status(), 400);
  await b.page.getByRole('heading', { name: 'Connection not completed' }).waitFor();
  t.match(await b.page.locator('body').innerText(), /started in another browser.*Start again from the connect link, in the same browser/s);
  await assertStyled(t, b.page, 'wrong-browser page');
  await screenshot(t, b.page, 'wrong-browser-page');
  t.equal(await stored(proxy), 'initiated', 'nothing stored');
  t.equal(as.count('authorization_code'), 0, 'no code exchanged');
  t.same(problems(b.console), []);

  // The browser that started it still finishes.
  await a.page.goto(callback);
  await a.page.getByRole('heading', { name: 'Connected' }).waitFor();
  t.equal(await stored(proxy), 'active');
});

t.test('a denied consent shows the provider\'s reason as text, and the connection failed', async (t) => {
  const { as, proxy, provider } = await setup(t);
  as.consent = 'deny';
  const { page, console } = await open(t, false);
  await page.goto(await link(proxy));
  await page.getByRole('button', { name: `Continue to ${provider}` }).click();
  await page.getByRole('button', { name: 'Allow' }).click();
  await page.getByRole('heading', { name: 'Connection not completed' }).waitFor();
  // The provider's error_description has markup in it: the page shows it, it does not parse it.
  t.match(await page.locator('body').innerText(), 'demo did not grant access (access_denied: The user said <no> & left). You can close this page and try again.');
  t.equal(await page.locator('no').count(), 0);
  await assertStyled(t, page, 'denied page');
  await screenshot(t, page, 'denied-page');
  t.equal(await stored(proxy), 'failed');
  t.same(problems(console), []);
});

t.test('an expired link shows its error page and asks nothing of the provider', async (t) => {
  const { as, proxy } = await setup(t);
  // A link signed eleven minutes ago, with the proxy's own key: only its age is wrong.
  const kv = { set: async () => {} } as unknown as KeyValue;
  const { token } = await createLink(kv, ADMIN, { entity: ENTITY, integration: 'demo', params: {} }, Date.now() - FLOW_TTL_MS - 60_000);
  const { page, console } = await open(t, false);
  const r = await page.goto(`${proxy.url}/connect/demo?token=${token}`);
  t.equal(r?.status(), 400);
  await page.getByRole('heading', { name: 'Connection not completed' }).waitFor();
  t.match(await page.locator('body').innerText(), /^This connect link has expired; ask for a new one\.$/m);
  t.equal(await page.getByRole('button').count(), 0, 'no button to press');
  await assertStyled(t, page, 'expired-link page');
  await screenshot(t, page, 'expired-link-page');
  t.equal(as.authorizeRequests.length, 0);
  t.equal(await stored(proxy), 'none');
  t.same(problems(console), []);
});

t.test('control: a style the CSP does not allow is reported on the console and not applied', async (t) => {
  // Without this, "no CSP violation" above could pass because nothing is ever reported.
  const { page, console } = await open(t, false);
  await page.route('http://control.test/', (route) =>
    route.fulfill({
      status: 200,
      headers: { 'content-type': 'text/html', 'content-security-policy': "default-src 'none'; style-src 'sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA='" },
      body: '<!doctype html><html><head><style>body{max-width:36em}</style></head><body><p>control</p></body></html>',
    }),
  );
  const reported = page.waitForEvent('console', { predicate: (m) => /Content Security Policy/.test(m.text()) });
  await page.goto('http://control.test/');
  await page.getByText('control').waitFor();
  t.equal(await computedStyle(page.locator('body'), 'maxWidth'), 'none', 'the style was blocked');
  await reported;
  t.match(problems(console).join('\n'), /Content Security Policy/, 'and the watch kept it');
});
