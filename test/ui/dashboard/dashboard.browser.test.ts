import t, { type Test } from 'tap';
import { chromiumForFile, DESKTOP, problems, watchConsole } from '../../support/chromium.js';
import { ADMIN, configDir, integrationYaml, startProxy, startUpstream, viaProxy, type TestProxy } from '../../support/servers.js';

/**
 * The dashboard as an operator uses it, in a real Chromium without JavaScript (the pages have
 * none): sign in, find an entity, filter to its expired connections, make a new connect link,
 * delete a connection, sign out and find every page closed. Screenshots at desktop and phone
 * widths go to a temporary folder, and to $CREDPROXY_SCREENSHOTS when it is set.
 */

const ENTITY = 'user:0123456789abcdef0123456789abcdef@tenant.example';
const GH =
  'description: GitHub, for the browser test\nhosts: [api.github.example]\nauth:\n  type: oauth2\n  authorize_url: https://github.example/authorize\n  token_url: https://github.example/token\n  client_id: id\n  client_secret: s\n  scopes: [repo, read:user]\n';

const { browser, screenshot } = chromiumForFile(t, 'dash-');

async function setup(t: Test): Promise<TestProxy> {
  const up = await startUpstream((req, res) => void res.writeHead(/missing/.test(req.url ?? '') ? 404 : /broken/.test(req.url ?? '') ? 502 : 200).end('ok'));
  t.teardown(() => up.close());
  const proxy = await startProxy(
    configDir('store: memory\n', {
      llm: `hosts: ["127.0.0.1:${up.port}"]\nupstream: http\nauth: { type: api_key }\n`,
      gh: GH,
      zendesk: integrationYaml(['{{subdomain}}.zendesk.example'], '{ type: api_key, fields: [api_key] }', 'params:\n  - name: subdomain\n    description: your Zendesk subdomain\n'),
    }),
  );
  t.teardown(() => proxy.close());
  const now = Date.now();
  const base = { entity: ENTITY, integration: 'gh', scheme: 'oauth2', params: {}, created_at: now - 86_400_000, updated_at: now };
  await proxy.runtime.store.put({ ...base, status: 'expired', reason: 'refresh refused: invalid_grant', credentials: { refresh_token: 'never-shown-refresh' }, expires_at: now - 60_000, refreshed_at: Date.UTC(2026, 11, 3, 9, 30), scopes: ['repo'] });
  await proxy.runtime.store.put({ ...base, label: 'work', status: 'active', credentials: { access_token: 'never-shown-access' }, expires_at: now + 3_600_000, scopes: ['repo', 'read:user'] });
  const put = await proxy.connect(ENTITY, 'zendesk', { params: { subdomain: 'acme' }, credentials: { api_key: 'never-shown-key' } });
  if (put.status !== 200) throw new Error(`put: ${put.status} ${await put.text()}`);
  await proxy.connect(ENTITY, 'llm', { credentials: { api_key: 'never-shown-llm' } });
  // Some traffic for the activity chart: mostly fine, a few 404s, one 502.
  for (const path of ['/a', '/b', '/c', '/d', '/e', '/missing', '/missing', '/broken']) {
    await viaProxy(proxy.port, `http://127.0.0.1:${up.port}${path}`, { headers: { 'x-entity-id': ENTITY } });
  }
  return proxy;
}

t.test('an operator signs in, filters, makes a link, deletes, and signs out', async (t) => {
  const proxy = await setup(t);
  const context = await browser().newContext({ javaScriptEnabled: false, viewport: DESKTOP });
  t.teardown(() => context.close());
  const page = await context.newPage();
  const said = watchConsole(page);

  await page.goto(`${proxy.url}/ui/`);
  await page.getByRole('heading', { name: 'credproxy dashboard' }).waitFor();
  await screenshot(t, page, 'sign-in');
  await page.getByLabel('Admin token').fill('wrong-token-0123456789');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').filter({ hasText: 'That is not the admin token' }).waitFor();
  t.same(await context.cookies(), [], 'no cookie for a wrong token');

  await page.getByLabel('Admin token').fill(ADMIN);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Integrations' }).waitFor();
  const [cookie] = await context.cookies(proxy.url);
  t.match(cookie, { name: 'credproxy-ui', httpOnly: true, sameSite: 'Strict' });
  const integrations = await page.locator('body').innerText();
  t.match(integrations, /gh\s+GitHub, for the browser test/);
  t.match(integrations, new RegExp(`Used by\\s+${ENTITY.replace(/[.+]/g, '\\$&')}\\s+expired\\s+${ENTITY.replace(/[.+]/g, '\\$&')} \\(work\\)\\s+active`), 'which connections use gh');
  await screenshot(t, page, 'integrations');

  await page.getByRole('link', { name: 'Activity' }).click();
  await page.getByRole('img', { name: 'Requests per integration in the last hour, by status' }).waitFor();
  t.match(await page.locator('body').innerText(), /8 proxied requests in the last hour/);
  await screenshot(t, page, 'activity');

  await page.getByRole('link', { name: 'Entities' }).click();
  await page.getByRole('heading', { name: 'All entities' }).waitFor();
  t.equal(await page.locator('tbody tr').count(), 4, 'every entity\'s connections, without a search');
  await screenshot(t, page, 'all-entities');
  await page.getByLabel('Entity id').fill(ENTITY);
  await page.getByRole('button', { name: 'Show' }).click();
  await page.getByRole('heading', { name: /^Connections of / }).waitFor();
  t.equal(await page.locator('tbody tr').count(), 4, 'all four connections');
  await page.getByLabel('Status').selectOption('expired');
  await page.getByRole('button', { name: 'Show' }).click();
  await page.waitForURL((u) => u.searchParams.get('status') === 'expired');
  t.equal(await page.locator('tbody tr').count(), 1, 'one expired connection');
  t.match(await page.locator('tbody tr').innerText(), /gh\s+default\s+expired\s+oauth2/);
  await screenshot(t, page, 'entity');

  await page.locator('tbody tr a', { hasText: 'gh' }).click();
  await page.getByRole('heading', { name: `gh for ${ENTITY}` }).waitFor();
  const detail = await page.locator('body').innerText();
  t.match(detail, /Status\s+expired\s+Last error\s+refresh refused: invalid_grant/);
  t.match(detail, /Last refresh\s+2026-12-03 09:30 UTC/, 'when the token was last refreshed');
  t.match(detail, /refresh_token \(values are never shown\)/);
  t.notMatch(await page.content(), /never-shown/, 'no secret on the page');
  await screenshot(t, page, 'connection');

  await page.getByRole('button', { name: 'New connect link' }).click();
  await page.getByRole('heading', { name: 'Connect link' }).waitFor();
  const link = await page.getByLabel('Copy this link').inputValue();
  t.match(link, `${proxy.url}/connect/gh?token=`);
  t.ok(await page.getByLabel('Copy this link').evaluate((el) => (el as unknown as { readOnly: boolean }).readOnly), 'read-only');
  await screenshot(t, page, 'connect-link');

  await page.getByRole('link', { name: 'Back to the connection' }).click();
  await page.getByRole('link', { name: 'Delete this connection…' }).click();
  await page.getByRole('heading', { name: 'Delete this connection?' }).waitFor();
  await screenshot(t, page, 'delete');
  await page.getByRole('button', { name: 'Delete' }).click();
  await page.getByRole('heading', { name: /^Connections of / }).waitFor();
  t.equal((await proxy.admin('GET', `/api/entities/${ENTITY}/connections/gh`)).status, 404, 'the default gh connection is gone');
  t.equal((await proxy.admin('GET', `/api/entities/${ENTITY}/connections/gh?label=work`)).status, 200, 'the labelled one stays');
  t.equal(await page.locator('tbody tr').count(), 3);

  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Signed out' }).waitFor();
  t.same(await context.cookies(), [], 'the browser forgot the cookie');
  for (const path of ['/ui/integrations', `/ui/entities?entity=${encodeURIComponent(ENTITY)}`, `/ui/entities/${encodeURIComponent(ENTITY)}/connections/zendesk`, '/ui/tokens']) {
    await page.goto(`${proxy.url}${path}`);
    await page.getByRole('heading', { name: 'credproxy dashboard' }).waitFor();
    t.equal(new URL(page.url()).pathname, '/ui/sign-in', `${path}: back at sign-in`);
  }
  // The old cookie, put back by hand, opens nothing either: the session ended in the store.
  await context.addCookies([cookie!]);
  await page.goto(`${proxy.url}/ui/integrations`);
  t.equal(new URL(page.url()).pathname, '/ui/sign-in', 'a signed-out cookie opens nothing');
  t.same(problems(said), [], 'no CSP violation or other console problem');
});

t.test('with the audit log off, Activity and a connection say why they show no requests', async (t) => {
  const up = await startUpstream((_req, res) => void res.writeHead(200).end('ok'));
  t.teardown(() => up.close());
  const proxy = await startProxy(configDir('store: memory\naudit:\n  enabled: false\n', { llm: `hosts: ["127.0.0.1:${up.port}"]\nupstream: http\nauth: { type: api_key }\n` }));
  t.teardown(() => proxy.close());
  await proxy.connect(ENTITY, 'llm', { credentials: { api_key: 'never-shown-llm' } });
  t.equal((await viaProxy(proxy.port, `http://127.0.0.1:${up.port}/a`, { headers: { 'x-entity-id': ENTITY } })).status, 200, 'the request itself goes through');
  const context = await browser().newContext({ javaScriptEnabled: false, viewport: DESKTOP });
  t.teardown(() => context.close());
  const page = await context.newPage();
  const said = watchConsole(page);

  await page.goto(`${proxy.url}/ui/`);
  await page.getByLabel('Admin token').fill(ADMIN);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Integrations' }).waitFor();
  await page.getByRole('link', { name: 'Activity' }).click();
  const status = page.getByRole('status');
  await status.waitFor();
  t.match(await status.innerText(), /No activity to show: the audit log is turned off \(audit\.enabled: false in credproxy\.yaml\)/);
  t.equal(await page.getByRole('img').count(), 0, 'no empty chart');
  await screenshot(t, page, 'activity-audit-off');

  await page.goto(`${proxy.url}/ui/entities/${encodeURIComponent(ENTITY)}/connections/llm`);
  await page.getByRole('heading', { name: 'Recent requests' }).waitFor();
  t.match(await page.locator('body').innerText(), /Recent requests\s+Not recorded: the audit log is turned off/);
  t.same(problems(said), [], 'no CSP violation or other console problem');
});
