import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import t from 'tap';
import { WebSocket } from 'ws';
import { makeTestCa } from '../support/certs.js';
import { configDir, setup, startProxy, startUpstream } from '../support/servers.js';
import { connectVia, rawExchange } from '../support/tunnel.js';
import { attachEcho, handshakeKey, readText, sendText } from '../support/websocket.js';

const upstreamCa = makeTestCa();
const upstreamCert = upstreamCa.issue(['127.0.0.1']);

/** A ws:// upgrade sent in absolute form, as a proxy-aware client would, over a real socket. */
function absoluteUpgrade(proxyPort: number, target: string, headers: Record<string, string>) {
  const { key, accept } = handshakeKey();
  return new Promise<{ status: number; accept: string | undefined; expected: string; socket: net.Socket; head: Buffer; body: string }>((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1',
      port: proxyPort,
      path: target,
      agent: false,
      headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-key': key, 'sec-websocket-version': '13', ...headers },
    });
    req.once('upgrade', (res, socket, head) => resolve({ status: res.statusCode ?? 0, accept: res.headers['sec-websocket-accept'] as string | undefined, expected: accept, socket, head, body: '' }));
    req.once('response', (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, accept: undefined, expected: accept, socket: res.socket, head: Buffer.alloc(0), body }));
    });
    req.once('error', reject);
    req.end();
  });
}

t.test('ws:// in absolute form: the credential is injected on the upgrade request, then frames flow both ways', async (t) => {
  const up = await startUpstream();
  const echo = attachEcho(up);
  const proxy = await startProxy(configDir('store: memory\n', { chat: `hosts: ["127.0.0.1:${up.port}"]\nupstream: http\nauth: { type: bearer }\n` }));
  t.teardown(async () => {
    await echo.close();
    await up.close();
  });
  await proxy.connect('alice', 'chat', { credentials: { token: 'ws-secret' } });
  for (const scheme of ['ws', 'http']) {
    const r = await absoluteUpgrade(proxy.port, `${scheme}://127.0.0.1:${up.port}/echo?room=1`, { 'x-entity-id': 'alice', authorization: 'Bearer spoofed' });
    t.equal(r.status, 101, scheme);
    t.equal(r.accept, r.expected, 'the upstream\'s handshake answer reaches the client intact');
    sendText(r.socket, `hello over ${scheme}`);
    t.equal(await readText(r.socket, r.head), `hello over ${scheme}`);
    if (scheme === 'ws') r.socket.destroy();
    else {
      // Left open: closing the proxy must end it rather than wait for the client.
      const gone = new Promise((resolve) => r.socket.once('close', resolve));
      await proxy.close();
      await gone;
    }
  }
  const seen = echo.upgrades.at(-1)!;
  t.equal(seen.authorization, 'Bearer ws-secret');
  t.notOk('x-entity-id' in seen);
  t.equal(seen.upgrade, 'websocket');
  t.match(proxy.logs.text, /"integration":"chat","method":"GET","host":"127.0.0.1:\d+","path":"\/echo","status":101/);
  t.notMatch(proxy.logs.text, /ws-secret/);
});

t.test('wss:// inside an intercepted tunnel, with the entity from the CONNECT proxy user and a real ws client', async (t) => {
  const up = await startUpstream(undefined, { tls: upstreamCert });
  const echo = attachEcho(up, { requireAuthorization: 'Bearer wss-secret' });
  const dir = configDir('store: memory\n', { chat: `hosts: ["127.0.0.1:${up.port}"]\nauth: { type: bearer }\n` });
  writeFileSync(join(dir, 'credproxy.yaml'), `store: memory\ntls: { ca_dir: ${join(dir, 'ca')}, upstream_ca: ${upstreamCa.write(dir)} }\n`);
  const proxy = await startProxy(dir);
  t.teardown(async () => {
    await proxy.close();
    await echo.close();
    await up.close();
  });
  await proxy.connect('alice', 'chat', { credentials: { token: 'wss-secret' } });
  const tunnel = await connectVia(proxy.port, `127.0.0.1:${up.port}`, { 'proxy-authorization': `Basic ${Buffer.from('alice:key').toString('base64')}` });
  t.equal(tunnel.status, 200);
  const ws = new WebSocket(`wss://127.0.0.1:${up.port}/live`, {
    createConnection: () => tls.connect({ socket: tunnel.socket, host: '127.0.0.1', ca: proxy.runtime.tls.ca!.certPem }),
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const echoed = new Promise<string>((r) => ws.once('message', (m: Buffer) => r(m.toString())));
  ws.send('ping through credproxy');
  t.equal(await echoed, 'ping through credproxy');
  await new Promise<void>((r) => {
    ws.once('close', () => r());
    ws.close(1000, 'done');
  });
  t.equal(echo.upgrades.at(-1)!.authorization, 'Bearer wss-secret');
  t.notOk('proxy-authorization' in echo.upgrades.at(-1)!);
});

t.test('an upgrade the upstream refuses comes back as the upstream\'s answer; pipeline errors as credproxy\'s', async (t) => {
  const up = await startUpstream();
  const echo = attachEcho(up, { requireAuthorization: 'Bearer right' });
  const proxy = await startProxy(
    configDir('store: memory\n', {
      chat: `hosts: ["127.0.0.1:${up.port}"]\nupstream: http\nauth: { type: bearer }\n`,
      down: 'hosts: ["127.0.0.1:1"]\nupstream: http\nauth: { type: bearer }\n',
    }),
  );
  t.teardown(async () => {
    await proxy.close();
    await echo.close();
    await up.close();
  });
  await proxy.connect('alice', 'chat', { credentials: { token: 'wrong' } });
  const refused = await absoluteUpgrade(proxy.port, `ws://127.0.0.1:${up.port}/`, { 'x-entity-id': 'alice' });
  t.equal(refused.status, 401);
  t.equal(refused.body, 'Unauthorized');
  const noEntity = await absoluteUpgrade(proxy.port, `ws://127.0.0.1:${up.port}/`, {});
  t.equal(noEntity.status, 400);
  t.match(noEntity.body, /"code":"entity_required"/);
  const api = await absoluteUpgrade(proxy.port, '/healthz', {});
  t.equal(api.status, 404);
  t.match(api.body, /"code":"not_found"/);
  // Was 502 upstream_error: the upgrade dialled a loopback passthrough target itself (issue 15 #1).
  const denied = await absoluteUpgrade(proxy.port, 'ws://127.0.0.1:2/', {});
  t.equal(denied.status, 403);
  t.match(denied.body, /"code":"host_denied"/);
  await proxy.connect('alice', 'down', { credentials: { token: 'down-secret' } });
  const gone = await absoluteUpgrade(proxy.port, 'ws://127.0.0.1:1/', { 'x-entity-id': 'alice' });
  t.equal(gone.status, 502);
  t.match(gone.body, /"code":"upstream_error"/);
});

t.test('Upgrade: h2c gets a clean HTTP/1.1 exchange, in absolute form and inside a tunnel', async (t) => {
  const { up, proxy } = await setup(t, {
    settings: 'store: memory\n',
    caInDir: true,
    integrations: (up) => ({ plain: `hosts: ["127.0.0.1:${up.port}"]\nupstream: http\nauth: { type: bearer }\n` }),
  });
  await proxy.connect('alice', 'plain', { credentials: { token: 'h2c-secret' } });
  const h2c = (target: string, body: string) =>
    `POST ${target} HTTP/1.1\r\nHost: 127.0.0.1:${up.port}\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n` +
    `X-Entity-Id: alice\r\nContent-Length: ${body.length}\r\n\r\n${body}`;

  // Inside a plain-HTTP tunnel (Java's HttpClient behind a proxy does this), keep-alive and all.
  const tunnel = await connectVia(proxy.port, `127.0.0.1:${up.port}`);
  // Read exactly one response (headers, then a content-length or chunked body), leaving the connection open.
  const first = await new Promise<string>((resolve) => {
    let buf = '';
    const onData = (c: Buffer) => {
      buf += c.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      const length = /content-length: (\d+)/i.exec(buf)?.[1];
      const complete = length === undefined ? buf.endsWith('\r\n0\r\n\r\n') : buf.length >= end + 4 + Number(length);
      if (end !== -1 && complete) {
        tunnel.socket.off('data', onData);
        resolve(buf);
      }
    };
    tunnel.socket.on('data', onData);
    tunnel.socket.write(h2c('/one', 'first body'));
  });
  t.match(first, /^HTTP\/1\.1 200 /);
  t.notMatch(first, /101|upgrade/i);
  const second = await rawExchange(tunnel.socket, `GET /two HTTP/1.1\r\nHost: x\r\nX-Entity-Id: alice\r\nConnection: close\r\n\r\n`);
  t.equal(second.status, 200, 'the connection goes on as HTTP/1.1');
  const [one, two] = up.seen.slice(-2);
  t.equal(one!.url, '/one');
  t.equal(one!.body.toString(), 'first body');
  t.equal(one!.headers.authorization, 'Bearer h2c-secret');
  t.notOk('upgrade' in one!.headers);
  t.notOk('http2-settings' in one!.headers);
  t.equal(two!.url, '/two');

  // Absolute form on the proxy port itself.
  const sock = net.connect(proxy.port, '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  const abs = await rawExchange(sock, h2c(`http://127.0.0.1:${up.port}/three`, 'third').replace('HTTP2-Settings\r\n', 'HTTP2-Settings, close\r\n'));
  t.equal(abs.status, 200);
  t.equal(up.seen.at(-1)!.url, '/three');
  t.equal(up.seen.at(-1)!.body.toString(), 'third');
});

t.test('with metrics.requests: false and audit.enabled: false, an upgrade counts nothing and records nothing', async (t) => {
  const up = await startUpstream();
  const echo = attachEcho(up);
  const proxy = await startProxy(configDir('store: memory\nmetrics: { requests: false }\naudit: { enabled: false }\n', { chat: `hosts: ["127.0.0.1:${up.port}"]\nupstream: http\nauth: { type: bearer }\n` }));
  t.teardown(async () => {
    await proxy.close();
    await echo.close();
    await up.close();
  });
  await proxy.connect('alice', 'chat', { credentials: { token: 'ws-secret' } });
  const r = await absoluteUpgrade(proxy.port, `ws://127.0.0.1:${up.port}/echo`, { 'x-entity-id': 'alice' });
  t.equal(r.status, 101);
  sendText(r.socket, 'still works');
  t.equal(await readText(r.socket, r.head), 'still works');
  r.socket.destroy();
  const m = proxy.runtime.metrics;
  for (const series of [m.requests, m.upstreamSeconds, m.upstreamLatency]) t.same((await series.get()).values, [], `${series.name}: nothing observed`);
  t.equal((await proxy.admin('GET', '/api/audit')).status, 404, 'the audit log is off');
});
