import t from 'tap';
import { buildConnector } from 'undici';
import { addressesFor, connectInOrder, deniedRange, dialInOrder, dialTcp, parseCidrs, resolveChecked, withTimeout } from '../../src/proxy/egress.js';
import { CredproxyError } from '../../src/errors.js';
import { configDir, startProxy, startUpstream, viaProxy } from '../support/servers.js';

t.test('deniedRange classifies by address bytes', async (t) => {
  const none = parseCidrs([]);
  const denied: Array<[string, RegExp]> = [
    ['127.0.0.1', /loopback/],
    ['127.255.255.254', /loopback/],
    ['10.1.2.3', /private/],
    ['172.16.0.1', /private/],
    ['172.31.255.255', /private/],
    ['192.168.0.1', /private/],
    ['169.254.169.254', /linkLocal/],
    ['100.64.0.1', /carrierGradeNat/],
    ['100.127.255.255', /carrierGradeNat/],
    ['0.0.0.0', /unspecified/],
    ['255.255.255.255', /broadcast/],
    ['239.1.1.1', /multicast/],
    ['240.0.0.1', /reserved/],
    ['::1', /loopback/],
    ['::', /unspecified/],
    ['fe80::1', /linkLocal/],
    ['fc00::1', /uniqueLocal/],
    ['fd00:ec2::254', /uniqueLocal/],
    ['ff02::1', /multicast/],
    ['::ffff:127.0.0.1', /ipv4Mapped form of a loopback/],
    ['::ffff:7f00:1', /ipv4Mapped form of a loopback/],
    ['::ffff:169.254.169.254', /ipv4Mapped form of a linkLocal/],
    // ipaddr.js reads `::a.b.c.d` as the mapped form; either way it is the loopback it carries.
    ['::127.0.0.1', /form of a loopback/],
    ['::7f00:1', /IPv4-compatible form of a loopback/],
    ['::ffff:0:10.0.0.1', /rfc6145 form of a private/],
    ['64:ff9b::a9fe:a9fe', /rfc6052 form of a linkLocal/],
    ['2002:a00:1::', /6to4 form of a private/],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', /teredo/],
    ['fec0::1', /deprecatedSiteLocal/],
    ['not-an-ip', /not an IP/],
  ];
  for (const [a, why] of denied) t.match(deniedRange(a, none), why, a);
  for (const a of ['8.8.8.8', '1.1.1.1', '172.32.0.1', '100.128.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8', '64:ff9b::808:808', '2002:808:808::']) {
    t.equal(deniedRange(a, none), undefined, `${a} is public`);
  }
});

t.test('allow_private opens exactly the listed ranges, in both spellings', async (t) => {
  const allow = parseCidrs(['10.1.0.0/16', '127.0.0.1/32', 'fd00:1::/32']);
  t.equal(deniedRange('10.1.200.3', allow), undefined);
  t.match(deniedRange('10.2.0.1', allow), /private/);
  t.equal(deniedRange('127.0.0.1', allow), undefined);
  t.match(deniedRange('127.0.0.2', allow), /loopback/);
  t.equal(deniedRange('::ffff:10.1.0.9', allow), undefined, 'the mapped form of a listed address');
  t.equal(deniedRange('fd00:1::5', allow), undefined);
  t.match(deniedRange('fd00:2::5', allow), /uniqueLocal/);
});

t.test('resolveChecked resolves names, checks every address and returns the one to dial', async (t) => {
  await t.rejects(resolveChecked('localhost', []), CredproxyError);
  await t.rejects(resolveChecked('localhost', []), { code: 'host_denied' });
  // localhost may resolve to ::1, 127.0.0.1 or both, depending on the machine.
  const local = await resolveChecked('localhost', parseCidrs(['127.0.0.0/8', '::1/128']));
  t.ok(local.length > 0 && local.every((a) => a === '127.0.0.1' || a === '::1'), `localhost is ${local.join(', ')}`);
  t.same(await resolveChecked('[::ffff:8.8.8.8]', []), ['::ffff:8.8.8.8'], 'literals are checked without a lookup');
  await t.rejects(resolveChecked('[::1]', []), { code: 'host_denied' });
  await t.rejects(resolveChecked('does-not-exist.invalid', []), { code: 'ENOTFOUND' });
});

t.test('a lookup that never answers ends in upstream_timeout', async (t) => {
  await t.rejects(withTimeout(new Promise<never>(() => {}), 20, 'slow.example'), { code: 'upstream_timeout', message: /resolving slow\.example/ });
  t.equal(await withTimeout(Promise.resolve(7), 20, 'fast.example'), 7);
});

t.test('passthrough dials the checked address and still sends the name as Host', async (t) => {
  const up = await startUpstream();
  t.teardown(() => up.close());
  // ::1 too: where localhost also resolves to ::1 (and the upstream listens on 127.0.0.1
  // only), the connector falls through to the next checked address.
  const proxy = await startProxy(configDir('store: memory\negress: { allow_private: ["127.0.0.0/8", "::1/128"] }\n'));
  t.teardown(() => proxy.close());
  const r = await viaProxy(proxy.port, `http://localhost:${up.port}/by-name`);
  t.equal(r.status, 200);
  t.equal(up.seen.at(-1)?.headers.host, `localhost:${up.port}`);
});

t.test('an allowed IPv6 literal is dialed (brackets removed for the socket, kept for Host)', async (t) => {
  const http = await import('node:http');
  const server = http.createServer((req, res) => res.end(`v6 ${req.headers.host}`));
  const listening = await new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(0, '::1', () => resolve(true));
  });
  if (!listening) {
    t.comment('no IPv6 loopback on this machine: nothing to dial');
    return;
  }
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const port = (server.address() as import('node:net').AddressInfo).port;
  const proxy = await startProxy(configDir('store: memory\negress: { allow_private: ["::1/128"] }\n'));
  t.teardown(() => proxy.close());
  const r = await viaProxy(proxy.port, `http://[::1]:${port}/`);
  t.equal(r.status, 200);
  t.equal(r.body.toString(), `v6 [::1]:${port}`);
  const mapped = await viaProxy(proxy.port, `http://[::ffff:127.0.0.1]:${port}/`);
  t.equal(mapped.status, 403, '::1 listed does not open the IPv4 loopback');
});

t.test('dialInOrder falls through to the next checked address, and reports the last failure', async (t) => {
  const up = await startUpstream();
  t.teardown(() => up.close());
  const dial = buildConnector({ timeout: 2000 });
  const options = { hostname: 'ignored', host: `x:${up.port}`, protocol: 'http:', port: String(up.port) } as buildConnector.Options;
  const connect = (addresses: string[]) =>
    new Promise<{ err: Error | null; remote?: string }>((resolve) =>
      dialInOrder(dial, options, addresses, (err, socket) => {
        resolve({ err, remote: socket?.remoteAddress });
        socket?.destroy();
      }),
    );
  // 127.0.0.2 is loopback too, but nothing listens there on this port: refused, then the next.
  const ok = await connect(['127.0.0.2', '127.0.0.1']);
  t.equal(ok.err, null);
  t.equal(ok.remote, '127.0.0.1');
  const bad = await connect(['127.0.0.2', '127.0.0.3']);
  t.match(bad.err, { code: 'ECONNREFUSED' });
});

t.test('connectInOrder (CONNECT tunnels) falls through to the next checked address too', async (t) => {
  const up = await startUpstream();
  t.teardown(() => up.close());
  const ok = await connectInOrder(['127.0.0.2', '127.0.0.1'], up.port, 2000, 'x');
  t.equal(ok.remoteAddress, '127.0.0.1');
  ok.destroy();
  await t.rejects(connectInOrder(['127.0.0.2', '127.0.0.3'], up.port, 2000, 'x'), { code: 'ECONNREFUSED' });
});

t.test('dialTcp and addressesFor: client-chosen hosts are checked, operator-chosen ones only resolved', async (t) => {
  const up = await startUpstream();
  t.teardown(() => up.close());
  await t.rejects(dialTcp('localhost', up.port, { chooser: 'client', timeout: 2000 }), { code: 'host_denied' });
  await t.rejects(dialTcp('2130706433', up.port, { chooser: 'client', timeout: 2000 }), { code: 'host_denied' });
  const allowed = await dialTcp('127.0.0.1', up.port, { chooser: 'client', allowPrivate: () => parseCidrs(['127.0.0.0/8']), timeout: 2000 });
  t.equal(allowed.remoteAddress, '127.0.0.1');
  allowed.destroy();
  const operator = await dialTcp('localhost', up.port, { chooser: 'operator', timeout: 2000 });
  t.match(operator.remoteAddress, /^(127\.0\.0\.1|::1)$/);
  operator.destroy();
  t.same(await addressesFor('[::1]', { chooser: 'operator', timeout: 2000 }), ['::1']);
  await t.rejects(addressesFor('[::1]', { chooser: 'client', timeout: 2000 }), { code: 'host_denied' });
});

t.test('integration hosts are trusted as configured: no egress check for them', async (t) => {
  const up = await startUpstream();
  t.teardown(() => up.close());
  const proxy = await startProxy(configDir('store: memory\n', { demo: `hosts: ["127.0.0.1:${up.port}"]\nupstream: http\nauth: { type: bearer }\n` }));
  t.teardown(() => proxy.close());
  await proxy.connect('alice', 'demo', { credentials: { token: 'tok-0000000000' } });
  const r = await viaProxy(proxy.port, `${up.origin}/x`, { headers: { 'X-Entity-Id': 'alice' } });
  t.equal(r.status, 200);
});

t.test('https passthrough dials the checked IP but verifies the certificate for the name', async (t) => {
  const { execFileSync } = await import('node:child_process');
  const { mkdtempSync, readFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const https = await import('node:https');
  const dir = mkdtempSync(join(tmpdir(), 'credproxy-tls-'));
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost'], { stdio: 'ignore' });
  const server = https.createServer({ key: readFileSync(key), cert: readFileSync(cert) }, (req, res) => {
    res.end(`tls ${req.headers.host}`);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const port = (server.address() as import('node:net').AddressInfo).port;
  const proxy = await startProxy(configDir(`store: memory\negress: { allow_private: ["127.0.0.0/8"] }\ntls: { upstream_ca: "${cert}" }\n`));
  t.teardown(() => proxy.close());
  const ok = await viaProxy(proxy.port, `https://localhost:${port}/`);
  t.equal(ok.status, 200);
  t.equal(ok.body.toString(), `tls localhost:${port}`);
  // The same server by IP: the certificate names localhost only, so verification must fail.
  const byIp = await viaProxy(proxy.port, `https://127.0.0.1:${port}/`);
  t.equal(byIp.status, 502);
  t.equal(byIp.headers['x-credproxy-error'], 'upstream_error');
});
