import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { CredproxyApiError, CredproxyClient, CredproxyUnreachableError } from '../../src/client/index.js';
import { ADMIN, configDir, integrationYaml, LOOPBACK_EGRESS, startProxy, startUpstream, TEST_CERT } from '../support/servers.js';

const ZENDESK = `hosts: ["{{subdomain}}.zendesk.example"]\nparams: [{ name: subdomain, pattern: "^[a-z0-9-]{1,63}$" }]\nauth: { type: bearer }\n`;
const GH = `hosts: [gh.example]\nauth:\n  type: oauth2\n  authorize_url: https://gh.example/authorize\n  token_url: https://gh.example/token\n  client_id: id\n  client_secret: s\n`;

async function setup(t: Test) {
  const up = await startUpstream();
  const tlsUp = await startUpstream(undefined, { tls: true });
  const dir = configDir('', {
    svc: integrationYaml([`127.0.0.1:${up.port}`], '{ type: api_key, fields: [api_key] }'),
    secure: `hosts: ["127.0.0.1:${tlsUp.port}"]\nauth: { type: bearer }\n`,
    zendesk: ZENDESK,
    gh: GH,
  });
  const settings = `store: memory\n${LOOPBACK_EGRESS}tls: { ca_dir: ${join(dir, 'ca')}, upstream_ca: ${TEST_CERT} }\n`;
  writeFileSync(join(dir, 'credproxy.yaml'), settings);
  const proxy = await startProxy(dir);
  const client = new CredproxyClient({ url: proxy.url, adminToken: ADMIN, ca: proxy.runtime.tls.ca?.certPem });
  t.teardown(async () => {
    await client.close();
    await proxy.close();
    await up.close();
    await tlsUp.close();
  });
  return { up, tlsUp, proxy, client };
}

t.test('integrations, connections with labels and params, connect links, tokens, audit', async (t) => {
  const { client } = await setup(t);
  t.same((await client.integrations.list()).map((i) => i.name).sort(), ['gh', 'secure', 'svc', 'zendesk']);
  t.equal((await client.integrations.get('zendesk')).params[0]?.name, 'subdomain');

  const stored = await client.connections.put('alice', 'svc', { credentials: { api_key: 'sk-1' } });
  t.equal(stored.status, 'active');
  t.same(stored.fields, ['api_key'], 'field names, never values');
  await client.connections.put('alice', 'svc', { credentials: { api_key: 'sk-2' } }, { label: 'work' });
  const zd = await client.connections.put('alice', 'zendesk', { params: { subdomain: 'acme' }, credentials: { token: 't' } });
  t.same(zd.params, { subdomain: 'acme' });
  t.equal((await client.connections.get('alice', 'svc', { label: 'work' })).label, 'work');
  t.equal((await client.connections.list('alice')).length, 3);
  await client.connections.delete('alice', 'svc', { label: 'work' });
  t.equal((await client.connections.list('alice')).length, 2);

  const link = await client.connections.connectLink('bob', 'gh');
  t.match(link.connect_url, /\/connect\/gh\?token=/);
  t.equal((await client.connections.get('bob', 'gh')).status, 'initiated');

  const token = await client.tokens.issue('alice', { ttl: 60, integrations: ['svc'] });
  t.match(token.token, /^cpx_/);
  await client.tokens.revoke(token.id);
  t.same(await client.audit.query({ entity: 'nobody', since: new Date(0), limit: 5 }), []);
  t.equal((await client.openapi()).openapi, '3.1.0');
});

t.test('errors carry the status and the X-Credproxy-Error code', async (t) => {
  const { client, proxy } = await setup(t);
  const missing = await client.connections.get('alice', 'svc').catch((e: unknown) => e);
  t.ok(missing instanceof CredproxyApiError);
  t.match(missing, { status: 404, code: 'not_found', message: /no connection/ });
  const bad = await client.connections.put('alice', 'svc', { credentials: { api_key: 'k' }, extra: 1 } as never).catch((e: unknown) => e);
  t.match(bad, { status: 400, code: 'bad_request', message: /unknown key extra/ });
  const anonymous = new CredproxyClient({ url: proxy.url });
  t.match(await anonymous.integrations.list().catch((e: unknown) => e), { status: 401, code: 'unauthorized' });
  await anonymous.close();
  const nobody = new CredproxyClient({ url: 'http://127.0.0.1:1', adminToken: ADMIN });
  t.ok((await nobody.health().catch((e: unknown) => e)) instanceof CredproxyUnreachableError);
  await nobody.close();
});

t.test('client.fetch calls an API as the entity, over http and intercepted https, with a label', async (t) => {
  const { client, up, tlsUp } = await setup(t);
  await client.connections.put('alice', 'svc', { credentials: { api_key: 'sk-alice' } });
  await client.connections.put('alice', 'svc', { credentials: { api_key: 'sk-work' } }, { label: 'work' });
  await client.connections.put('alice:x@example.com', 'secure', { credentials: { token: 'tok-colon' } });
  const r = await client.fetch('alice')(`http://127.0.0.1:${up.port}/v1/me`, { headers: { 'x-app': '1' } });
  t.equal(r.status, 200);
  await r.text();
  t.equal(up.seen.at(-1)?.headers.authorization, 'Bearer sk-alice', 'the credential was injected');
  t.equal(up.seen.at(-1)?.headers['x-app'], '1');
  t.notOk(up.seen.at(-1)?.headers['proxy-authorization']);
  const w = await client.fetch({ entity: 'alice', label: 'work' })(`http://127.0.0.1:${up.port}/v1/me`);
  await w.text();
  t.equal(up.seen.at(-1)?.headers.authorization, 'Bearer sk-work', 'the labelled connection');
  t.notOk(up.seen.at(-1)?.headers['x-connection-label'], 'the label is not forwarded');
  const s = await client.fetch('alice:x@example.com')(`https://127.0.0.1:${tlsUp.port}/me`);
  t.equal(s.status, 200, 'credproxy CA trusted, an entity id with ":" and "@"');
  await s.text();
  t.equal(tlsUp.seen.at(-1)?.headers.authorization, 'Bearer tok-colon');
  const none = await client.fetch('carol')(`http://127.0.0.1:${up.port}/v1/me`);
  t.equal(none.status, 424);
  t.equal(none.headers.get('x-credproxy-error'), 'connection_missing');
  await none.text();
  t.throws(() => client.dispatcher({ entity: 'not an id' }), TypeError);
});

/** A stand-in server whose answers the test scripts: what the retry policy does with each. */
async function scripted(t: Test, answers: Array<[number, string | null]>) {
  let hits = 0;
  const server = http.createServer((_req, res) => {
    const [status, code] = answers[Math.min(hits++, answers.length - 1)]!;
    const body = status < 400 ? JSON.stringify({ status: 'ok' }) : JSON.stringify({ error: { code: code ?? 'x', message: 'm' } });
    res.writeHead(status, { 'content-type': 'application/json', ...(code ? { 'x-credproxy-error': code } : {}) }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const client = new CredproxyClient({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, adminToken: ADMIN, backoffMs: 1 });
  t.teardown(() => client.close());
  return { client, hits: () => hits };
}

t.test('503 store_unavailable is retried with back-off, a few times; 4xx and other 5xx never', async (t) => {
  const flaky = await scripted(t, [[503, 'store_unavailable'], [503, 'store_unavailable'], [200, null]]);
  t.same(await flaky.client.health(), { status: 'ok' });
  t.equal(flaky.hits(), 3);
  const down = await scripted(t, [[503, 'store_unavailable']]);
  t.match(await down.client.health().catch((e: unknown) => e), { status: 503, code: 'store_unavailable' });
  t.equal(down.hits(), 3, 'three attempts, then the error');
  for (const [status, code] of [[400, 'bad_request'], [404, 'not_found'], [503, null], [502, 'upstream_error']] as const) {
    const once = await scripted(t, [[status, code], [200, null]]);
    t.match(await once.client.health().catch((e: unknown) => e), { status });
    t.equal(once.hits(), 1, `${status} ${code}: not retried`);
  }
});
