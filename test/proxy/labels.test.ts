import http from 'node:http';
import type net from 'node:net';
import tls from 'node:tls';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { ProxyAgent, request } from 'undici';
import { WebSocket } from 'ws';
import { makeTestCa } from '../support/certs.js';
import { configDir, errorOf, integrationYaml, LOOPBACK_EGRESS, setup, startProxy, startUpstream, viaProxy, type Seen } from '../support/servers.js';
import { connectVia } from '../support/tunnel.js';
import { attachEcho, handshakeKey } from '../support/websocket.js';

/**
 * Several connections of one entity to one integration (work and personal accounts): a
 * request picks one with X-Connection-Label, the default (unlabelled) one without it, and
 * the header never reaches an upstream, whatever way the request came in.
 */

/** Whether any header name the upstream received is the label header, in any casing. */
const sawLabel = (seen: Seen) => seen.rawHeaders.some((h, i) => i % 2 === 0 && h.toLowerCase() === 'x-connection-label');

async function mailFixture(t: Test, settings = '') {
  const s = await setup(t, {
    settings: `store: memory\n${LOOPBACK_EGRESS}${settings}`,
    integrations: (up) => ({ mail: integrationYaml([`127.0.0.1:${up.port}`], '{ type: bearer }') }),
  });
  const put = (entity: string, token: string, label?: string) =>
    s.proxy.admin('PUT', `/api/entities/${entity}/connections/mail${label === undefined ? '' : `?label=${label}`}`, { credentials: { token } });
  t.equal((await put('alice', 'tok-default')).status, 200);
  t.equal((await put('alice', 'tok-work', 'work')).status, 200);
  t.equal((await put('alice', 'tok-personal', 'personal')).status, 200);
  const get = (headers: Record<string, string | string[]>) => viaProxy(s.proxy.port, `http://127.0.0.1:${s.up.port}/inbox`, { headers });
  return { ...s, put, get };
}

t.test('the label picks the connection; without it the default one; the header never travels', async (t) => {
  const { up, proxy, get } = await mailFixture(t);

  t.equal((await get({ 'X-Entity-Id': 'alice', 'X-Connection-Label': 'work' })).status, 200);
  t.equal(up.seen.at(-1)!.headers.authorization, 'Bearer tok-work');
  t.notOk(sawLabel(up.seen.at(-1)!), 'X-Connection-Label is not forwarded');

  // Header names are case-insensitive; the label itself is not (work and Work are two labels).
  t.equal((await get({ 'x-entity-id': 'alice', 'x-CONNECTION-label': 'personal' })).status, 200);
  t.equal(up.seen.at(-1)!.headers.authorization, 'Bearer tok-personal');
  t.notOk(sawLabel(up.seen.at(-1)!));

  t.equal((await get({ 'X-Entity-Id': 'alice' })).status, 200);
  t.equal(up.seen.at(-1)!.headers.authorization, 'Bearer tok-default', 'no header: the default connection');

  // Listed in Connection it is hop-by-hop twice over: still used to pick, still not forwarded.
  t.equal((await get({ 'X-Entity-Id': 'alice', 'X-Connection-Label': 'work', Connection: 'X-Connection-Label' })).status, 200);
  t.equal(up.seen.at(-1)!.headers.authorization, 'Bearer tok-work');
  t.notOk(sawLabel(up.seen.at(-1)!));

  t.match(proxy.logs.text, /"entity":"alice","label":"work","integration":"mail"/, 'the log line names the label');
  t.notMatch(proxy.logs.text, /tok-(work|personal|default)/, 'never a credential in the logs');
});

t.test('an unknown label is 424 connection_missing naming it; no fallback to the default', async (t) => {
  const { up, put, get } = await mailFixture(t);
  const before = up.seen.length;
  const r = await get({ 'X-Entity-Id': 'alice', 'X-Connection-Label': 'travel' });
  const e = errorOf(r);
  t.same([e.status, e.code, e.header], [424, 'connection_missing', 'connection_missing']);
  t.match(e.message, /entity "alice" has no connection labelled "travel" for integration "mail"/);

  // bob has only a labelled connection: a request without the header has no default to use.
  t.equal((await put('bob', 'tok-bob-work', 'work')).status, 200);
  const none = errorOf(await get({ 'X-Entity-Id': 'bob' }));
  t.same([none.status, none.code], [424, 'connection_missing']);
  t.match(none.message, /entity "bob" has no connection for integration "mail"/);
  t.equal(up.seen.length, before, 'nothing was forwarded');
});

t.test('a malformed label, or two of them, is 400 bad_request saying what a label is', async (t) => {
  const { up, get } = await mailFixture(t);
  const before = up.seen.length;
  for (const bad of ['', 'has space', '-leading', 'a/b', 'x'.repeat(65), 'ünï']) {
    const e = errorOf(await get({ 'X-Entity-Id': 'alice', 'X-Connection-Label': bad }));
    t.same([e.status, e.code], [400, 'bad_request'], JSON.stringify(bad));
    t.match(e.message, /X-Connection-Label header: a connection label is 1 to 64 letters, digits and \._:@\+- starting with a letter or digit/);
  }
  const twice = errorOf(await get({ 'X-Entity-Id': 'alice', 'X-Connection-Label': ['work', 'personal'] }));
  t.same([twice.status, twice.code], [400, 'bad_request']);
  t.match(twice.message, /given more than once/);
  t.equal((await get({ 'X-Entity-Id': 'alice', 'X-Connection-Label': 'x'.repeat(64) })).status, 424, '64 characters is a well-formed label');
  t.equal(up.seen.length, before, 'nothing was forwarded');
});

t.test('passthrough: the label header is removed too, and not checked', async (t) => {
  const { proxy } = await mailFixture(t);
  const other = await startUpstream();
  t.teardown(() => other.close());
  const r = await viaProxy(proxy.port, `${other.origin}/free`, { headers: { 'X-Entity-Id': 'alice', 'X-Connection-Label': 'not a label!' } });
  t.equal(r.status, 200);
  t.notOk(sawLabel(other.seen.at(-1)!));
  t.notOk(other.seen.at(-1)!.headers.authorization, 'no credential for a host no integration owns');
});

t.test('an entity token names the entity, the header still picks the account; rate caps count per entity across labels', async (t) => {
  const { up, proxy } = await mailFixture(t, 'limits: { requests_per_minute: 3 }\n');
  const issued = await proxy.admin('POST', '/api/entities/alice/tokens', { integrations: ['mail'] });
  const { token } = (await issued.json()) as { token: string };
  const send = (headers: Record<string, string>) => viaProxy(proxy.port, `http://127.0.0.1:${up.port}/inbox`, { headers });

  t.equal((await send({ authorization: `Bearer ${token}`, 'X-Connection-Label': 'work' })).status, 200);
  t.equal(up.seen.at(-1)!.headers.authorization, 'Bearer tok-work', 'the cpx_ token is replaced by the labelled credential');
  t.notOk(sawLabel(up.seen.at(-1)!));
  t.equal((await send({ authorization: `Bearer ${token}` })).status, 200);
  t.equal(up.seen.at(-1)!.headers.authorization, 'Bearer tok-default');

  t.equal((await send({ 'x-entity-id': 'alice', 'X-Connection-Label': 'personal' })).status, 200);
  const over = errorOf(await send({ 'x-entity-id': 'alice', 'X-Connection-Label': 'work' }));
  t.same([over.status, over.code], [429, 'rate_limited'], 'one cap for the entity at the integration, whichever account');
});

t.test('an entity token bound to a label: its requests use that connection; the header may repeat it, never change it', async (t) => {
  const { up, proxy } = await mailFixture(t);
  const issued = await proxy.admin('POST', '/api/entities/alice/tokens', { label: 'work' });
  t.equal(issued.status, 200);
  const { token, label } = (await issued.json()) as { token: string; label: string };
  t.equal(label, 'work');
  const send = (headers: Record<string, string>) => viaProxy(proxy.port, `http://127.0.0.1:${up.port}/inbox`, { headers });

  // As the SDK's key, and as the proxy password (a client that can set no header at all).
  t.equal((await send({ authorization: `Bearer ${token}` })).status, 200);
  t.equal(up.seen.at(-1)!.headers.authorization, 'Bearer tok-work');
  t.equal((await send({ 'proxy-authorization': `Basic ${Buffer.from(`x:${token}`).toString('base64')}` })).status, 200);
  t.equal(up.seen.at(-1)!.headers.authorization, 'Bearer tok-work');
  t.equal((await send({ authorization: `Bearer ${token}`, 'X-Connection-Label': 'work' })).status, 200);

  const before = up.seen.length;
  const other = errorOf(await send({ authorization: `Bearer ${token}`, 'X-Connection-Label': 'personal' }));
  t.same([other.status, other.code], [403, 'entity_denied']);
  t.match(other.message, /the entity token is for the connection labelled "work", not "personal"/);
  t.equal(up.seen.length, before, 'not forwarded');

  for (const [body, message] of [
    [{ label: 'no spaces' }, /^label: a connection label is 1 to 64/],
    [{ label: 7 }, /label must be a string/],
    [{ labels: ['work'] }, /unknown key labels; expected integrations, ttl, label/],
  ] as const) {
    const r = await proxy.admin('POST', '/api/entities/alice/tokens', body);
    t.equal(r.status, 400);
    t.match(await r.json(), { error: { code: 'bad_request', message } });
  }
  const plain = (await (await proxy.admin('POST', '/api/entities/alice/tokens', {})).json()) as { label: unknown };
  t.equal(plain.label, null, 'a token without a label leaves the choice to the header');
});

// HTTPS through an intercepted tunnel, and WebSocket upgrades: the same pipeline, the same stripping.
const upstreamCa = makeTestCa();
const upstreamCert = upstreamCa.issue(['127.0.0.1']);

t.test('intercepted HTTPS and a WebSocket upgrade pick by label and strip the header', async (t) => {
  const up = await startUpstream(undefined, { tls: upstreamCert });
  const echo = attachEcho(up);
  const plain = await startUpstream();
  const plainEcho = attachEcho(plain);
  const dir = configDir('', {
    secure: `hosts: ["127.0.0.1:${up.port}"]\nupstream: https\nauth: { type: bearer }\n`,
    chat: integrationYaml([`127.0.0.1:${plain.port}`], '{ type: bearer }'),
  });
  writeFileSync(join(dir, 'credproxy.yaml'), `store: memory\ntls:\n  ca_dir: ${join(dir, 'ca')}\n  upstream_ca: ${upstreamCa.write(dir)}\n`);
  const proxy = await startProxy(dir);
  t.teardown(async () => {
    await proxy.close();
    await Promise.all([echo.close(), plainEcho.close()]);
    await Promise.all([up.close(), plain.close()]);
  });
  for (const [integration, label, token] of [
    ['secure', undefined, 'sec-default'],
    ['secure', 'work', 'sec-work'],
    ['chat', 'work', 'chat-work'],
  ] as const) {
    const q = label === undefined ? '' : `?label=${label}`;
    t.equal((await proxy.admin('PUT', `/api/entities/alice/connections/${integration}${q}`, { credentials: { token } })).status, 200);
  }

  const dispatcher = new ProxyAgent({ uri: proxy.url, requestTls: { ca: proxy.runtime.tls.ca!.certPem } });
  t.teardown(() => dispatcher.close());
  const r = await request(`https://127.0.0.1:${up.port}/me`, { dispatcher, headers: { 'x-entity-id': 'alice', 'x-connection-label': 'work' } });
  t.equal(r.statusCode, 200);
  await r.body.text();
  t.equal(up.seen.at(-1)!.headers.authorization, 'Bearer sec-work');
  t.notOk(sawLabel(up.seen.at(-1)!), 'not forwarded from inside the tunnel');
  const d = await request(`https://127.0.0.1:${up.port}/me`, { dispatcher, headers: { 'x-entity-id': 'alice' } });
  await d.body.text();
  t.equal(up.seen.at(-1)!.headers.authorization, 'Bearer sec-default');

  // wss:// inside an intercepted tunnel (the entity as the CONNECT proxy user), the label on the upgrade request.
  const tunnel = await connectVia(proxy.port, `127.0.0.1:${up.port}`, { 'proxy-authorization': `Basic ${Buffer.from('alice:key').toString('base64')}` });
  t.equal(tunnel.status, 200);
  const ws = new WebSocket(`wss://127.0.0.1:${up.port}/live`, {
    headers: { 'X-Connection-Label': 'work' },
    createConnection: () => tls.connect({ socket: tunnel.socket, host: '127.0.0.1', ca: proxy.runtime.tls.ca!.certPem }),
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  await new Promise<void>((r) => {
    ws.once('close', () => r());
    ws.close(1000, 'done');
  });
  t.equal(echo.upgrades.at(-1)!.authorization, 'Bearer sec-work');
  t.notOk('x-connection-label' in echo.upgrades.at(-1)!, 'not on the upgrade request upstream');

  // ws:// in absolute form, as a proxy-aware client sends it.
  const status = await new Promise<number>((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1',
      port: proxy.port,
      path: `ws://127.0.0.1:${plain.port}/socket`,
      agent: false,
      headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-key': handshakeKey().key, 'sec-websocket-version': '13', 'x-entity-id': 'alice', 'X-Connection-Label': 'work' },
    });
    req.once('upgrade', (res, socket: net.Socket) => {
      socket.destroy();
      resolve(res.statusCode ?? 0);
    });
    req.once('response', (res) => resolve(res.statusCode ?? 0));
    req.once('error', reject);
    req.end();
  });
  t.equal(status, 101);
  const seen = plainEcho.upgrades.at(-1)!;
  t.equal(seen.authorization, 'Bearer chat-work');
  t.notOk('x-connection-label' in seen, 'not on the upgrade request upstream');
});
