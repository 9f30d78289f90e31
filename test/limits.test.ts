import t from 'tap';
import { TunnelGate, serverOptions } from '../src/limits.js';
import { loadConfig } from './support/config.js';
import { configDir, startProxy, viaProxy } from './support/servers.js';

t.test('documented defaults', async (t) => {
  const l = loadConfig(configDir('store: memory\n'), { env: {} }).settings.limits;
  t.same(
    {
      header_bytes: l.header_bytes,
      header_count: l.header_count,
      request_header_timeout_ms: l.request_header_timeout_ms,
      keep_alive_timeout_ms: l.keep_alive_timeout_ms,
      upstream_keep_alive_timeout_ms: l.upstream_keep_alive_timeout_ms,
      upstream_connect_timeout_ms: l.upstream_connect_timeout_ms,
      upstream_response_timeout_ms: l.upstream_response_timeout_ms,
      max_connections: l.max_connections,
      max_tunnels: l.max_tunnels,
      admin_body_bytes: l.admin_body_bytes,
      shutdown_grace_ms: l.shutdown_grace_ms,
    },
    {
      header_bytes: 32768,
      header_count: 100,
      request_header_timeout_ms: 30000,
      keep_alive_timeout_ms: 65000,
      upstream_keep_alive_timeout_ms: 30000,
      upstream_connect_timeout_ms: 10000,
      upstream_response_timeout_ms: 120000,
      max_connections: 4096,
      max_tunnels: 1024,
      admin_body_bytes: 1048576,
      shutdown_grace_ms: 30000,
    },
  );
  const o = serverOptions(l);
  t.equal(o.connectionsCheckingInterval, 1000, 'the header timeout is checked every second');
  t.equal(serverOptions({ ...l, request_header_timeout_ms: 200 }).connectionsCheckingInterval, 50, 'and more often for short timeouts');
});

t.test('max_connections: connections over the limit are refused', async (t) => {
  const proxy = await startProxy(configDir('store: memory\nlimits: { max_connections: 1 }\n'));
  t.teardown(() => proxy.close());
  t.equal(proxy.server.maxConnections, 1);
  const net = await import('node:net');
  const first = net.connect(proxy.port, '127.0.0.1');
  t.teardown(() => first.destroy());
  await new Promise((r) => first.once('connect', r));
  // The second connection is accepted by the kernel and closed by node at once.
  const second = net.connect(proxy.port, '127.0.0.1');
  const closedWithoutAnswer = await new Promise<boolean>((resolve) => {
    let got = false;
    second.on('data', () => (got = true));
    second.on('close', () => resolve(!got));
    second.on('error', () => {});
    second.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
  });
  t.ok(closedWithoutAnswer);
  first.destroy();
  await new Promise((r) => first.once('close', r));
  const ok = await viaProxy(proxy.port, '/healthz');
  t.equal(ok.status, 200, 'a slot freed is usable again');
});

t.test('TunnelGate', async (t) => {
  let max = 2;
  const gate = new TunnelGate(() => max);
  const r1 = gate.acquire();
  const r2 = gate.acquire();
  t.equal(gate.count, 2);
  t.throws(() => gate.acquire(), { code: 'rate_limited', headers: { 'retry-after': '1' } });
  r1();
  r1();
  t.equal(gate.count, 1, 'release is idempotent');
  gate.acquire();
  max = 3;
  gate.acquire();
  t.equal(gate.count, 3, 'the limit is read at every acquire');
  r2();
});

t.test('keep_alive_timeout_ms: an idle client connection is closed by the server', async (t) => {
  const proxy = await startProxy(configDir('store: memory\nlimits: { keep_alive_timeout_ms: 100 }\n'));
  t.teardown(() => proxy.close());
  const net = await import('node:net');
  const socket = net.connect(proxy.port, '127.0.0.1');
  socket.on('error', () => {});
  let text = '';
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  socket.on('data', (d: Buffer) => (text += d.toString()));
  socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
  await closed;
  t.match(text, /^HTTP\/1\.1 200/, 'the request was answered on the kept-alive connection');
  t.match(text, /keep-alive: timeout=0/i, 'the server announced its idle timeout (rounded to seconds)');
});
