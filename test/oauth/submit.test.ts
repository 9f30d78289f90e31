import type { IncomingMessage, ServerResponse } from 'node:http';
import t, { type Test } from 'tap';
import { createLink } from '../../src/oauth/links.js';
import { Browser, connectForm } from '../support/browser.js';
import { testKey } from '../support/keys.js';
import { OAuthServer } from '../support/oauth-server.js';
import { oauthIntegration } from '../support/oauth-config.js';
import { configDir, startProxy, startUpstream, viaProxy, type TestProxy } from '../support/servers.js';

/**
 * The connect page for schemes with fields (issue 17): what a browser posts is checked as the
 * admin PUT checks it, a refusal is a page that says why (never the secret) and leaves the
 * link usable, and nothing is stored until everything passed.
 */

const GOOD = 'sk-good-0123456789';
const BAD = 'sk-wrong-9876543210';

/** /v1/models answers 200 for the one key it knows, 401 (echoing the key, as some do) otherwise. */
function modelsApi(req: IncomingMessage, res: ServerResponse) {
  const given = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
  if (req.url === '/v1/models' && given !== GOOD) return void res.writeHead(401).end(`bad key ${given}`);
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ authorization: req.headers.authorization ?? null }));
}

interface Setup {
  proxy: TestProxy;
  port: number;
  /** desk's upstream (a host of its own: 127.0.0.1 at llm's port is llm's) */
  deskPort: number;
}

async function setup(t: Test): Promise<Setup> {
  const up = await startUpstream(modelsApi);
  const desk = await startUpstream(modelsApi);
  const app = `http://127.0.0.1:${up.port}/app`;
  const dir = configDir(`store: memory\nconnect:\n  allowed_redirects: ["${app}"]\n`, {
    llm: `hosts: ["127.0.0.1:${up.port}"]\nupstream: http\ndescription: An LLM API\nauth: { type: api_key, fields: [{ name: api_key, description: "Your secret key, sk-…" }] }\nverify: { path: /v1/models }\n`,
    desk: [
      `hosts: ["127.0.0.{{subdomain}}:${desk.port}"]`,
      'upstream: http',
      'params: [{ name: subdomain, pattern: "^[0-9]{1,3}$", description: "Your tenant number" }]',
      'auth: [{ type: api_key }, { type: basic }]',
      '',
    ].join('\n'),
  });
  const proxy = await startProxy(dir);
  t.teardown(async () => {
    await proxy.close();
    await Promise.all([up.close(), desk.close()]);
  });
  return { proxy, port: up.port, deskPort: desk.port };
}

/** Opens the link and posts its form with `extra` fields. */
async function post(browser: Browser, url: string, extra: Record<string, string>, edit: (f: Record<string, string>) => void = () => {}) {
  const page = await browser.request(url);
  const { action, fields } = connectForm(await page.text());
  const form = { ...fields, ...extra };
  edit(form);
  const r = await browser.request(action, { form });
  return { r, text: await r.text() };
}

t.test('an API key through the page: a wrong one is refused by verify and leaves the link; the right one is stored and used', async (t) => {
  const { proxy, port } = await setup(t);
  const url = await proxy.connectLink('alice', 'llm', { redirect_to: `http://127.0.0.1:${port}/app/done` });
  const browser = new Browser();

  const page = await browser.request(url);
  t.equal(page.status, 200);
  t.equal(page.headers.get('cache-control'), 'no-store');
  t.match(page.headers.get('content-security-policy'), /frame-ancestors 'none'/);
  const html = await page.text();
  t.match(html, /<label for="f-api_key">API key<\/label>/, 'a label for the input');
  t.match(html, /<input id="f-api_key" name="f\.api_key" type="password" autocomplete="off"[^>]* required aria-describedby="f-api_key-hint">/);
  t.match(html, /Your secret key, sk-…/, "the field's description");
  t.match(html, /An LLM API/);

  const wrong = await post(browser, url, { 'f.api_key': BAD });
  t.equal(wrong.r.status, 400);
  t.match(wrong.text, /llm did not accept these credentials \(it answered 401\)\. Nothing was stored/);
  t.notMatch(wrong.text, BAD, 'the wrong key is not shown again');
  t.match(wrong.text, /<input id="f-api_key"/, 'the form again');
  t.equal(await proxy.connectionStatus('alice', 'llm'), 'initiated');

  const right = await post(browser, url, { 'f.api_key': GOOD });
  t.equal(right.r.status, 200, 'the same link still works');
  t.match(right.text, /<title>Connected<\/title>/);
  t.notMatch(right.text, GOOD);
  const next = /http-equiv="refresh" content="0; url=([^"]+)"/.exec(right.text)?.[1]?.replace(/&amp;/g, '&');
  t.equal(next, `http://127.0.0.1:${port}/app/done?status=active&integration=llm`, 'on to redirect_to with the outcome');
  t.equal(await proxy.connectionStatus('alice', 'llm'), 'active');

  const proxied = await viaProxy(proxy.port, `http://127.0.0.1:${port}/v1/chat`, { headers: { 'X-Entity-Id': 'alice' } });
  t.equal(proxied.status, 200);
  t.same(proxied.json(), { authorization: `Bearer ${GOOD}` }, 'the next request carries the key');

  const again = await browser.request(url);
  t.equal(again.status, 400);
  t.match(await again.text(), /already used or has expired; ask for a new one/, 'the link is used up');
});

t.test('several schemes and a subdomain param: choose basic, then its fields', async (t) => {
  const { proxy, deskPort } = await setup(t);
  const url = await proxy.connectLink('alice', 'desk');
  const browser = new Browser();
  const html = await (await browser.request(url)).text();
  t.match(html, /<legend>How do you want to connect\?<\/legend>/);
  t.match(html, /type="radio" name="scheme" id="scheme-0" value="api_key" checked/);
  t.match(html, /value="basic"> <label for="scheme-1">Username and password<\/label>/);
  t.match(html, /Your tenant number\. Format: <code>\^\[0-9\]\{1,3\}\$<\/code>/, 'the param with its description and pattern');

  const badParam = await post(browser, url, { scheme: 'basic', 'p.subdomain': 'acme.evil' });
  t.equal(badParam.r.status, 400);
  t.match(badParam.text, /Params\.subdomain does not match the pattern/);
  t.match(badParam.text, /value="acme\.evil"/, 'what was typed comes back, to correct');

  const chosen = await post(browser, url, { scheme: 'basic', 'p.subdomain': '1' });
  t.equal(chosen.r.status, 200);
  t.match(chosen.text, /<h2>Username and password<\/h2>/);
  const second = connectForm(chosen.text);
  t.equal(second.fields['p.subdomain'], '1', 'the param is carried to the second step');
  t.equal(second.fields.step, 'submit');
  const done = await browser.request(second.action, { form: { ...second.fields, 'f.username': 'ann', 'f.password': 'pw-1' } });
  t.equal(done.status, 200);
  t.match(await done.text(), /desk is connected/);
  const c = (await (await proxy.admin('GET', '/api/entities/alice/connections/desk')).json()) as { scheme: string; params: Record<string, string> };
  t.equal(c.scheme, 'basic');
  t.same(c.params, { subdomain: '1' });
  const proxied = await viaProxy(proxy.port, `http://127.0.0.1:${deskPort}/x`, { headers: { 'X-Entity-Id': 'alice' } });
  t.same(proxied.json(), { authorization: `Basic ${Buffer.from('ann:pw-1').toString('base64')}` });
});

t.test('bad inputs: each a clear message, nothing stored, the link left usable', async (t) => {
  const { proxy } = await setup(t);
  const url = await proxy.connectLink('alice', 'llm');
  const browser = new Browser();
  const cases: Array<[string, Record<string, string>, RegExp, ((f: Record<string, string>) => void)?]> = [
    ['a forged CSRF token', { 'f.api_key': GOOD }, /does not belong to this browser/, (f) => (f.csrf = 'x'.repeat(43))],
    ['no CSRF token', { 'f.api_key': GOOD }, /does not belong to this browser/, (f) => delete f.csrf],
    ['an over-long field', { 'f.api_key': 'k'.repeat(9000) }, /f\.api_key is longer than 8192 characters/],
    ['control characters', { 'f.api_key': 'sk-a\r\nX-Evil: 1' }, /Credentials\.api_key contains control characters/],
    ['an unknown scheme', { 'f.api_key': GOOD, scheme: 'oauth2' }, /This link cannot connect with &quot;oauth2&quot;/],
    ['an unknown field', { 'f.api_key': GOOD, 'f.extra': 'x' }, /unknown field extra/],
    ['a field given twice', {}, /gives f\.api_key more than once/],
    ['a missing key', { 'f.api_key': '' }, /Credentials\.api_key is required/],
  ];
  for (const [name, extra, message, edit] of cases) {
    const page = await browser.request(url);
    const { action, fields } = connectForm(await page.text());
    const form = { ...fields, ...extra };
    edit?.(form);
    const body = name === 'a field given twice' ? `${new URLSearchParams(form).toString()}&f.api_key=a&f.api_key=b` : new URLSearchParams(form).toString();
    const r = await fetch(action, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html', cookie: [...browser.cookies('127.0.0.1')].map(([k, v]) => `${k}=${v}`).join('; ') },
      body,
    });
    t.equal(r.status, 400, `${name}: 400`);
    const text = await r.text();
    t.match(text, message, `${name}: says why`);
    t.notMatch(text, GOOD, `${name}: no secret echoed`);
  }
  const other = new Browser();
  const stolen = connectForm(await (await browser.request(url)).text());
  const r = await other.request(stolen.action, { form: { ...stolen.fields, 'f.api_key': GOOD } });
  t.equal(r.status, 400, 'the form posted from another browser (no cookie)');
  t.equal(await proxy.connectionStatus('alice', 'llm'), 'initiated', 'nothing stored');
  t.equal((await post(browser, url, { 'f.api_key': GOOD })).r.status, 200, 'the link still works');
});

t.test('the link body: scheme and label checked; an expired link is a page', async (t) => {
  const { proxy } = await setup(t);
  const bad = await proxy.admin('POST', '/api/entities/alice/connections/desk/connect', { scheme: 'oauth2' });
  t.equal(bad.status, 400);
  t.match(await bad.text(), /has no scheme \\"oauth2\\"; it offers api_key, basic/);
  const badLabel = await proxy.admin('POST', '/api/entities/alice/connections/desk/connect', { label: 'no spaces' });
  t.equal(badLabel.status, 400);
  const badParam = await proxy.admin('POST', '/api/entities/alice/connections/desk/connect', { params: { subdomain: 'x' } });
  t.equal(badParam.status, 400, 'params given in the body are checked there');
  const scopes = await proxy.admin('POST', '/api/entities/alice/connections/llm/connect', { scopes: ['read'] });
  t.equal(scopes.status, 400);
  t.match(await scopes.text(), /scopes apply to an oauth2 scheme/);

  const one = await proxy.connectLink('alice', 'desk', { scheme: 'basic', label: 'work', params: { subdomain: '2' } });
  const html = await (await new Browser().request(one)).text();
  t.notMatch(html, /type="radio"/, 'one scheme: no choice');
  t.match(html, /<dt>subdomain<\/dt><dd>2<\/dd>/, 'the fixed param is shown, not asked');
  t.match(html, /name="f\.password" type="password"/);
  t.match(html, /connection &quot;work&quot;/);

  const old = await createLink(proxy.runtime.store.kv, proxy.runtime.adminToken, { entity: 'alice', integration: 'llm', params: {} }, Date.now() - 11 * 60_000);
  const expired = await new Browser().request(`${proxy.url}/connect/llm?token=${old.token}`);
  t.equal(expired.status, 400);
  t.match(await expired.text(), /has expired; ask for a new one/);
});

t.test('oauth2 beside api_key: choosing oauth2 goes on to the provider and connects there', async (t) => {
  const as = await new OAuthServer().start();
  const up = await startUpstream();
  const auth = oauthIntegration(as, up.port).replace('auth:\n  type: oauth2', 'auth:\n - type: oauth2').replace(/\n {2}(\w)/g, '\n   $1');
  const proxy = await startProxy(configDir('store: memory\n', { both: `${auth}\n - type: api_key\n` }));
  t.teardown(async () => {
    await proxy.close();
    await Promise.all([as.close(), up.close()]);
  });
  const url = await proxy.connectLink('alice', 'both');
  const browser = new Browser();
  const html = await (await browser.request(url)).text();
  t.match(html, new RegExp(`value="oauth2" checked> <label for="scheme-0">Sign in at 127\\.0\\.0\\.1:${as.port}</label>`));
  t.match(html, /value="api_key"> <label for="scheme-1">API key<\/label>/);
  const { action, fields } = connectForm(html);
  const done = await browser.follow(action, { form: { ...fields, scheme: 'oauth2' } });
  t.equal(done.status, 200);
  t.match(await done.text(), /both is connected/);
  const c = (await (await proxy.admin('GET', '/api/entities/alice/connections/both')).json()) as { scheme: string; status: string };
  t.same([c.scheme, c.status], ['oauth2', 'active']);
});

t.test('a PEM key in a text area (jwt): line breaks as a browser sends them (CRLF) are kept, and the key signs the next request', async (t) => {
  const up = await startUpstream();
  const proxy = await startProxy(
    configDir('store: memory\n', {
      signed: `hosts: ["127.0.0.1:${up.port}"]\nupstream: http\nauth:\n  type: jwt\n  algorithm: ES256\n  fields: [{ name: account, secret: false }]\n  claims: { iss: "{{account}}", sub: "{{entity}}" }\n`,
    }),
  );
  t.teardown(async () => {
    await proxy.close();
    await up.close();
  });
  const url = await proxy.connectLink('alice', 'signed');
  const browser = new Browser();
  const html = await (await browser.request(url)).text();
  t.match(html, /<textarea id="f-private_key" name="f\.private_key" rows="6" autocomplete="off"[^>]*><\/textarea>/, 'a text area, empty');
  const pem = testKey('ES256').privateText.replace(/\r?\n/g, '\r\n');
  const bad = await post(browser, url, { 'f.account': 'acme', 'f.private_key': 'not a key' });
  t.equal(bad.r.status, 400);
  t.match(bad.text, /Credentials\.private_key: /);
  t.match(bad.text, /<input id="f-account"[^>]*value="acme"/, 'the non-secret field comes back');
  const ok = await post(browser, url, { 'f.account': 'acme', 'f.private_key': pem });
  t.equal(ok.r.status, 200, ok.text.slice(0, 300));
  const proxied = await viaProxy(proxy.port, `http://127.0.0.1:${up.port}/x`, { headers: { 'X-Entity-Id': 'alice' } });
  const sent = (proxied.json() as { headers: Record<string, string> }).headers.authorization ?? '';
  t.match(sent, /^Bearer eyJ/, 'a signed JWT');
  t.equal(JSON.parse(Buffer.from(sent.split('.')[1]!, 'base64url').toString()).iss, 'acme');
});
