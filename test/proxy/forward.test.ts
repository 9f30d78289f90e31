import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import t from 'tap';
import { upstreamError } from '../../src/proxy/forward.js';
import { within } from '../support/wait-for.js';
import { configDir, errorOf, LOOPBACK_EGRESS, setup, startProxy, viaProxy } from '../support/servers.js';

t.test('every method and its body go through; redirects come back unfollowed', async (t) => {
  const { up, proxy } = await setup(t, {
    handler: (req, res, body) => {
      if (req.url === '/redirect') {
        res.writeHead(302, { location: 'http://elsewhere.invalid/' });
        return res.end();
      }
      res.writeHead(200, { 'content-type': 'text/plain', 'x-method': req.method });
      res.end(`${req.method} ${body.length}`);
    },
  });
  for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) {
    const r = await viaProxy(proxy.port, `${up.origin}/m`, { method, body: method === 'GET' ? undefined : 'hello' });
    t.equal(r.status, 200);
    t.equal(r.body.toString(), `${method} ${method === 'GET' ? 0 : 5}`);
  }
  const head = await viaProxy(proxy.port, `${up.origin}/m`, { method: 'HEAD' });
  t.equal(head.headers['x-method'], 'HEAD');
  t.equal(head.body.length, 0);
  const redirect = await viaProxy(proxy.port, `${up.origin}/redirect`);
  t.equal(redirect.status, 302);
  t.equal(redirect.headers.location, 'http://elsewhere.invalid/');
  t.equal(up.seen.filter((s) => s.url === '/redirect').length, 1, 'asked once, not followed');
});

t.test('keep-alive on both sides: one client socket, one pooled upstream socket', async (t) => {
  const ports = new Set<number>();
  const { up, proxy } = await setup(t, {
    handler: (req, res) => {
      ports.add(req.socket.remotePort!);
      res.end('ok');
    },
  });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  const clientSockets = new Set<unknown>();
  for (let i = 0; i < 3; i++) {
    await new Promise<void>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port: proxy.port, path: `${up.origin}/k${i}`, agent }, (res) => {
          clientSockets.add(res.socket);
          res.resume();
          res.on('end', resolve);
        })
        .on('error', reject);
    });
  }
  t.equal(clientSockets.size, 1, 'the client kept its connection to the proxy');
  t.equal(ports.size, 1, 'the proxy reused its upstream connection');
});

t.test('upstream failures are credproxy answers: 502 unreachable or garbage, 504 too slow', async (t) => {
  const garbage = net.createServer((s) => s.end('this is not HTTP\r\n\r\n'));
  await new Promise<void>((r) => garbage.listen(0, '127.0.0.1', r));
  t.teardown(() => garbage.close());
  const silent = net.createServer(() => {});
  const held: net.Socket[] = [];
  silent.on('connection', (s) => held.push(s));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    held.forEach((s) => s.destroy());
    silent.close();
  });
  const proxy = await startProxy(configDir(`store: memory\nlimits: { upstream_response_timeout_ms: 200 }\n${LOOPBACK_EGRESS}`));
  t.teardown(() => proxy.close());

  const closed = net.createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const closedPort = (closed.address() as AddressInfo).port;
  await new Promise((r) => closed.close(r));
  const refused = errorOf(await viaProxy(proxy.port, `http://127.0.0.1:${closedPort}/`));
  t.same([refused.status, refused.code, refused.header], [502, 'upstream_error', 'upstream_error']);
  t.match(refused.message, /ECONNREFUSED/);

  const bad = errorOf(await viaProxy(proxy.port, `http://127.0.0.1:${(garbage.address() as AddressInfo).port}/`));
  t.same([bad.status, bad.code], [502, 'upstream_error']);

  const slow = errorOf(await viaProxy(proxy.port, `http://127.0.0.1:${(silent.address() as AddressInfo).port}/`));
  t.same([slow.status, slow.code, slow.header], [504, 'upstream_timeout', 'upstream_timeout']);
});

t.test('an upstream that dies mid-body cuts the client off rather than ending cleanly', async (t) => {
  const { up, proxy } = await setup(t, {
    handler: (_req, res) => {
      res.writeHead(200, { 'content-length': 1000 });
      res.write('x'.repeat(100));
      setImmediate(() => res.socket?.destroy());
    },
  });
  const outcome = await viaProxy(proxy.port, `${up.origin}/`).then(
    (r) => `complete with ${r.body.length} bytes`,
    (err: Error) => `error: ${err.message}`,
  );
  t.match(outcome, /^error: /, `the client sees the truncation (${outcome})`);
});

t.test('upstreamError maps errors to codes', async (t) => {
  t.equal(upstreamError(new Error('boom')).message, 'the upstream could not be reached or answered garbage (boom)');
  t.equal(upstreamError(Object.assign(new Error('x'), { code: 'ENOTFOUND' })).code, 'upstream_error');
});

t.test('a client that goes away mid-download releases the upstream request', async (t) => {
  let upstreamClosed!: () => void;
  const closed = new Promise<void>((r) => (upstreamClosed = r));
  const { up, proxy } = await setup(t, {
    handler: (_req, res) => {
      res.on('close', () => upstreamClosed());
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const chunk = Buffer.alloc(64 * 1024);
      const pump = () => {
        while (!res.destroyed && res.write(chunk));
        if (!res.destroyed) res.once('drain', pump);
      };
      pump();
    },
  });
  await new Promise<void>((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: proxy.port, path: `${up.origin}/endless`, agent: false }, (res) => {
      res.once('data', () => {
        req.destroy();
        resolve();
      });
    });
    req.on('error', (err) => (req.destroyed ? undefined : reject(err)));
  });
  t.ok(await within(closed), 'the upstream response was torn down when the client left');
});
