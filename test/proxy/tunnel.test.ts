import { randomBytes, createHash } from 'node:crypto';
import net, { type AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { configDir, startProxy, startUpstream } from '../support/servers.js';
import { connectVia } from '../support/tunnel.js';
import { waitFor, within } from '../support/wait-for.js';

/** A TCP server that echoes every byte and half-closes when the client does. */
async function startEcho(t: Test) {
  const server = net.createServer({ allowHalfOpen: true }, (s) => s.pipe(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  return (server.address() as AddressInfo).port;
}

const settings = 'store: memory\negress: { allow_private: ["127.0.0.0/8"] }\n';

t.test('a tunnel to a host no integration owns carries bytes unchanged, with backpressure, and passes the half-close on', async (t) => {
  const port = await startEcho(t);
  const proxy = await startProxy(configDir(settings));
  t.teardown(() => proxy.close());
  const tunnel = await connectVia(proxy.port, `127.0.0.1:${port}`);
  t.equal(tunnel.status, 200);
  // 16 MiB, far more than any socket buffer: the writer must be paused while the reader lags.
  const data = randomBytes(16 * 1024 * 1024);
  const received = createHash('sha256');
  let count = 0;
  const done = new Promise<void>((resolve) => {
    tunnel.socket.on('data', (c: Buffer) => {
      received.update(c);
      count += c.length;
    });
    tunnel.socket.once('end', resolve); // the echo server's FIN, sent after ours arrived
  });
  tunnel.socket.end(data);
  await done;
  t.equal(count, data.length);
  t.equal(received.digest('hex'), createHash('sha256').update(data).digest('hex'));
  await new Promise((r) => tunnel.socket.once('close', r));
  t.match(proxy.logs.text, /"mode":"tunnel"/);
});

t.test('an unreachable target is 502 upstream_error before the tunnel opens', async (t) => {
  const closed = net.createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((r) => closed.close(() => r()));
  const proxy = await startProxy(configDir(settings));
  t.teardown(() => proxy.close());
  const r = await connectVia(proxy.port, `127.0.0.1:${port}`);
  t.equal(r.status, 502);
  t.equal(r.headers['x-credproxy-error'], 'upstream_error');
  t.match(r.body.toString(), /ECONNREFUSED/);
});

t.test('close() ends open tunnels instead of waiting for clients', async (t) => {
  const port = await startEcho(t);
  const proxy = await startProxy(configDir(settings));
  const tunnel = await connectVia(proxy.port, `127.0.0.1:${port}`);
  const gone = waitFor(tunnel.socket, 'close');
  // Not awaited first: a close() that waits for clients would hang the test instead of failing it.
  const closed = within(proxy.close());
  t.ok(await gone, 'the client saw its tunnel closed');
  t.ok(await closed, 'close() returned');
});

t.test('bytes the client sends right behind its CONNECT (in the same packet) are not lost', async (t) => {
  const port = await startEcho(t);
  const up = await startUpstream();
  const dir = configDir(settings, { plain: `hosts: ["127.0.0.1:${up.port}"]\nupstream: http\nauth: { type: bearer }\n` });
  writeFileSync(join(dir, 'credproxy.yaml'), `${settings}tls: { ca_dir: ${join(dir, 'ca')} }\n`);
  const proxy = await startProxy(dir);
  t.teardown(async () => {
    await proxy.close();
    await up.close();
  });
  await proxy.connect('alice', 'plain', { credentials: { token: 'eager-secret' } });

  // A plain TCP tunnel: the early bytes reach the echo server and come back after the 200.
  const raw = net.connect(proxy.port, '127.0.0.1');
  const echoed = await rawUntil(raw, `CONNECT 127.0.0.1:${port} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\nearly bytes`, 'early bytes');
  t.match(echoed, /^HTTP\/1\.1 200 Connection Established\r\n\r\nearly bytes$/);
  raw.destroy();

  // An intercepted tunnel: the early bytes are the first inner request.
  const inner = net.connect(proxy.port, '127.0.0.1');
  const answer = await rawUntil(
    inner,
    `CONNECT 127.0.0.1:${up.port} HTTP/1.1\r\nHost: 127.0.0.1:${up.port}\r\n\r\nGET /eager HTTP/1.1\r\nHost: x\r\nX-Entity-Id: alice\r\nConnection: close\r\n\r\n`,
    '0\r\n\r\n',
  );
  t.match(answer, /^HTTP\/1\.1 200 Connection Established\r\n\r\nHTTP\/1\.1 200 OK/);
  t.equal(up.seen.at(-1)!.url, '/eager');
  t.equal(up.seen.at(-1)!.headers.authorization, 'Bearer eager-secret');
  inner.destroy();
});

/** Writes `text` in one go and collects the answer until it ends with `until`. */
function rawUntil(socket: net.Socket, text: string, until: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    socket.on('data', (c: Buffer) => {
      got += c.toString('latin1');
      if (got.endsWith(until)) resolve(got);
    });
    socket.once('error', reject);
    socket.write(text);
  });
}
