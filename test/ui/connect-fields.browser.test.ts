import { mkdirSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import type { Page } from 'playwright-core';
import { computedStyle, chromiumForFile, DESKTOP, problems, watchConsole } from '../support/chromium.js';
import { configDir, startProxy, startUpstream, viaProxy, type TestProxy } from '../support/servers.js';

/**
 * The connect page for schemes with fields (issue 17), in a real Chromium without JavaScript,
 * as an end user goes through it: type an API key (a wrong one first, refused by the
 * integration's `verify`), choose among several schemes with a subdomain param, come back to
 * the application. Screenshots go to a temporary folder, and to $CREDPROXY_SCREENSHOTS.
 */

const GOOD = 'sk-good-0123456789';
const BAD = 'sk-wrong-9876543210';

const { browser, screenshot } = chromiumForFile(t, 'connect-');

/** An API that knows one key at /v1/models, and echoes the Authorization it got elsewhere. */
function api(req: IncomingMessage, res: ServerResponse) {
  const given = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
  if (req.url === '/v1/models' && given !== GOOD) return void res.writeHead(401).end();
  if (req.url === '/logo.svg') {
    const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="48" height="48"><rect width="48" height="48" rx="10" fill="#0f766e"/><text x="24" y="32" font-size="22" text-anchor="middle" fill="#fff" font-family="sans-serif">M</text></svg>';
    return void res.writeHead(200, { 'content-type': 'image/svg+xml' }).end(svg);
  }
  // An application page that embeds the connect page it is given (connect.frame_ancestors).
  if (req.url?.startsWith('/embed?')) {
    const src = new URL(req.url, 'http://x').searchParams.get('src') ?? '';
    return void res.writeHead(200, { 'content-type': 'text/html' }).end(`<!doctype html><title>App</title><h1>Connect your account</h1><iframe title="Connect" width="100%" height="700" src="${src.replace(/[&"<>]/g, (c) => `&#${c.charCodeAt(0)};`)}"></iframe>`);
  }
  if (req.url?.startsWith('/app/')) return void res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>App</title><h1>Back in the app</h1>');
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ authorization: req.headers.authorization ?? null }));
}

async function setup(t: Test, opts: { embeddable?: boolean } = {}): Promise<{ proxy: TestProxy; port: number; deskPort: number }> {
  const up = await startUpstream(api);
  const desk = await startUpstream(api);
  // Embeddable: the first upstream's origin may frame the connect pages, the desk's may not.
  const frame = opts.embeddable ? `  frame_ancestors: ["http://127.0.0.1:${up.port}"]\n` : '';
  const dir = configDir(`store: memory\nconnect:\n  allowed_redirects: ["http://127.0.0.1:${up.port}/app/"]\n${frame}`, {
    llm: [
      `hosts: ["127.0.0.1:${up.port}"]`,
      'upstream: http',
      'description: A large language model API',
      `display: { name: Model API, logo_url: "http://127.0.0.1:${up.port}/logo.svg", docs_url: "http://127.0.0.1:${up.port}/docs" }`,
      `auth: { type: api_key, fields: [{ name: api_key, description: "The secret key from your account settings, starting with sk-", docs_url: "http://127.0.0.1:${up.port}/docs/keys" }] }`,
      'verify: { path: /v1/models }',
      '',
    ].join('\n'),
    desk: [
      `hosts: ["127.0.0.{{subdomain}}:${desk.port}"]`,
      'upstream: http',
      'description: A help desk, one per tenant',
      'params: [{ name: subdomain, pattern: "^[0-9]{1,3}$", description: "The number of your tenant" }]',
      // A logo from a file, served by credproxy itself (src/ui/logo.ts): an SVG, under its own CSP.
      'display: { logo_file: logos/desk.svg }',
      'auth: [{ type: api_key }, { type: basic }]',
      '',
    ].join('\n'),
  });
  mkdirSync(join(dir, 'logos'));
  writeFileSync(
    join(dir, 'logos', 'desk.svg'),
    '<svg xmlns="http://www.w3.org/2000/svg" width="48" height="48"><circle cx="24" cy="24" r="22" style="fill:#7c3aed"/><text x="24" y="31" font-size="20" text-anchor="middle" fill="#fff" font-family="sans-serif">D</text></svg>',
  );
  const proxy = await startProxy(dir);
  t.teardown(async () => {
    await proxy.close();
    await Promise.all([up.close(), desk.close()]);
  });
  return { proxy, port: up.port, deskPort: desk.port };
}

async function open(t: Test): Promise<{ page: Page; console: string[] }> {
  const context = await browser().newContext({ javaScriptEnabled: false, viewport: DESKTOP });
  t.teardown(() => context.close());
  const page = await context.newPage();
  return { page, console: watchConsole(page) };
}

// The tests compile without the DOM library; this is what runs inside the page.
declare const document: { activeElement: { id?: string } | null };
const focused = (page: Page) => page.evaluate(() => document.activeElement?.id ?? '');

t.test('an end user connects an API key; a wrong one is refused by verify; the next request carries the key', async (t) => {
  const { proxy, port } = await setup(t);
  const url = await proxy.connectLink('alice', 'llm');
  const { page, console } = await open(t);

  await page.goto(url);
  await page.getByRole('heading', { name: 'Connect Model API' }).waitFor();
  t.equal(await page.getByRole('link', { name: 'Where do I find this?' }).getAttribute('href'), `http://127.0.0.1:${port}/docs/keys`, "the field's docs_url");
  t.equal(await page.getByRole('link', { name: 'Model API documentation' }).getAttribute('href'), `http://127.0.0.1:${port}/docs`);
  const logo = page.getByRole('img', { name: 'Model API logo' });
  t.ok(await logo.evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth > 0), 'the logo loaded: img-src allows its origin');
  const key = page.getByLabel('API key');
  t.equal(await key.getAttribute('type'), 'password', 'the key is typed into a password input');
  t.equal(await key.getAttribute('autocomplete'), 'off');
  t.ok(await page.getByText('The secret key from your account settings').isVisible(), "the field's description");
  t.equal(await computedStyle(page.locator('body'), 'maxWidth'), '576px', 'the stylesheet applied under the CSP');
  // Tab order follows the page: the integration's docs, the field's "Where do I find this?", the key.
  for (let i = 0; i < 3; i++) await page.keyboard.press('Tab');
  t.equal(await focused(page), 'f-api_key', 'Tab reaches the key after the two links above it');
  await screenshot(t, page, 'api-key');

  await key.fill(BAD);
  await page.getByRole('button', { name: 'Connect' }).click();
  await page.getByRole('alert').waitFor();
  t.match(await page.getByRole('alert').innerText(), /Model API did not accept these credentials \(it answered 401\)\. Nothing was stored/);
  t.equal(await page.getByLabel('API key').inputValue(), '', 'the refused key is not written back');
  t.notMatch(await page.content(), BAD);
  t.equal(await proxy.connectionStatus('alice', 'llm'), 'initiated');
  await screenshot(t, page, 'verify-refused');

  await page.getByLabel('API key').fill(GOOD);
  await page.getByRole('button', { name: 'Connect' }).click();
  await page.getByRole('heading', { name: 'Connected' }).waitFor();
  t.match(await page.locator('body').innerText(), /Model API is connected\. You can close this page\./);
  await screenshot(t, page, 'done');
  t.equal(await proxy.connectionStatus('alice', 'llm'), 'active');
  const proxied = await viaProxy(proxy.port, `http://127.0.0.1:${port}/v1/chat`, { headers: { 'X-Entity-Id': 'alice' } });
  t.same(proxied.json(), { authorization: `Bearer ${GOOD}` }, 'the next proxied request carries the key');

  // The used link, opened again.
  const again = await page.goto(url);
  t.equal(again?.status(), 400);
  t.match(await page.locator('body').innerText(), /already used or has expired; ask for a new one/);
  await screenshot(t, page, 'used-link');
  t.same(problems(console), [], 'no CSP violation or other console problem');
});

t.test('several schemes and a subdomain param: the user chooses username and password, then comes back to the app', async (t) => {
  const { proxy, port, deskPort } = await setup(t);
  const url = await proxy.connectLink('alice', 'desk', { redirect_to: `http://127.0.0.1:${port}/app/connected`, label: 'work' });
  const { page, console } = await open(t);

  await page.goto(url);
  await page.getByRole('group', { name: 'How do you want to connect?' }).waitFor();
  const logo = page.getByRole('img', { name: 'desk logo' });
  t.match(await logo.getAttribute('src'), /^\/connect\/desk\/logo\/[0-9a-f]{16}$/, 'the logo file, from credproxy');
  t.ok(await logo.evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth > 0), "it loaded under img-src 'self'");
  await page.keyboard.press('Tab');
  t.equal(await focused(page), 'scheme-0', 'focus starts at the choice');
  await screenshot(t, page, 'choose');
  await page.getByLabel('Username and password').check();
  await page.getByLabel('Subdomain').fill('tenant-1');
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByRole('alert').waitFor();
  t.match(await page.getByRole('alert').innerText(), /Params\.subdomain does not match the pattern \^\[0-9\]\{1,3\}\$/);
  t.equal(await page.getByLabel('Subdomain').inputValue(), 'tenant-1', 'what was typed is there to correct');
  await screenshot(t, page, 'param-refused');

  await page.getByLabel('Username and password').check();
  await page.getByLabel('Subdomain').fill('1');
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByRole('heading', { name: 'Username and password' }).waitFor();
  t.equal(await page.getByLabel('Password').getAttribute('type'), 'password');
  await screenshot(t, page, 'basic-fields');
  await page.getByLabel('Username').fill('ann');
  await page.getByLabel('Password').fill('pw-1');
  await page.getByRole('button', { name: 'Connect' }).click();
  await page.waitForURL((u) => u.pathname === '/app/connected');
  const back = new URL(page.url());
  t.same(Object.fromEntries(back.searchParams), { status: 'active', integration: 'desk', label: 'work' }, 'the outcome in the query');

  const r = await proxy.admin('GET', '/api/entities/alice/connections/desk?label=work');
  t.match(await r.json(), { status: 'active', scheme: 'basic', params: { subdomain: '1' } });
  const proxied = await viaProxy(proxy.port, `http://127.0.0.1:${deskPort}/x`, { headers: { 'X-Entity-Id': 'alice', 'X-Connection-Label': 'work' } });
  t.same(proxied.json(), { authorization: `Basic ${Buffer.from('ann:pw-1').toString('base64')}` });
  t.same(problems(console), []);
});

t.test('framed by an origin connect.frame_ancestors names, the page works inside the frame; another origin cannot frame it', async (t) => {
  const { proxy, port, deskPort } = await setup(t, { embeddable: true });
  const { page, console } = await open(t);
  await page.goto(`http://127.0.0.1:${port}/embed?src=${encodeURIComponent(await proxy.connectLink('alice', 'llm'))}`);
  const frame = page.frameLocator('iframe[title="Connect"]');
  await frame.getByRole('heading', { name: 'Connect Model API' }).waitFor();
  await frame.getByLabel('API key').fill(GOOD);
  await frame.getByRole('button', { name: 'Connect' }).click();
  await frame.getByRole('heading', { name: 'Connected' }).waitFor();
  t.equal(await proxy.connectionStatus('alice', 'llm'), 'active', 'connected from inside the frame (the binding cookie is same-site here)');
  await screenshot(t, page, 'embedded');
  t.same(problems(console), [], 'no CSP violation while framed by an allowed origin');

  // The same page in an application on another origin: Chromium refuses to show it.
  await page.goto(`http://127.0.0.1:${deskPort}/embed?src=${encodeURIComponent(await proxy.connectLink('bob', 'llm'))}`);
  await page.getByRole('heading', { name: 'Connect your account' }).waitFor();
  const framed = () => page.frames().find((f) => f !== page.mainFrame());
  for (let i = 0; i < 50 && !/^chrome-error:/.test(framed()?.url() ?? ''); i++) await page.waitForTimeout(100);
  t.match(framed()?.url(), /^chrome-error:/, 'Chromium shows its error page in the frame instead');
  t.ok(console.some((l) => l.includes(`violates the following Content Security Policy directive: "frame-ancestors http://127.0.0.1:${port}"`)), 'and says why');
  t.equal(await frame.getByRole('heading', { name: 'Connect Model API' }).count(), 0, 'nothing of the page is shown');
  t.equal(await proxy.connectionStatus('bob', 'llm'), 'initiated');
});
