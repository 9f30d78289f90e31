import { createServer, request, type IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import t from 'tap';
import { peerUid, startRelay } from '../../src/cli/relay.js';

/**
 * run's relay against a stand-in proxy that records what it is sent: every request and every
 * CONNECT carries the entity's credentials, and never the client's own Proxy-Authorization.
 */
t.test('the relay adds the entity to requests and CONNECTs, replacing what the client sent', { timeout: 60_000 }, async (t) => {
  const seen: Array<{ method: string; url: string; headers: IncomingHttpHeaders }> = [];
  const fake = createServer((req, res) => {
    seen.push({ method: req.method!, url: req.url!, headers: req.headers });
    res.writeHead(200, { 'x-from': 'fake', connection: 'keep-alive' }).end('hello');
  });
  fake.on('connect', (req, socket) => {
    seen.push({ method: req.method!, url: req.url!, headers: req.headers });
    if (req.url?.startsWith('hold.')) socket.write('HTTP/1.1 200 Connection established\r\n\r\n');
    else socket.end('HTTP/1.1 200 Connection established\r\n\r\ntunnel-bytes');
  });
  await new Promise<void>((r) => fake.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => fake.close());
  const relay = await startRelay({ proxyUrl: `http://127.0.0.1:${(fake.address() as { port: number }).port}`, entity: 'alice', token: 'cpx_test' });
  t.teardown(() => relay.close());
  const expected = `Basic ${Buffer.from('alice:cpx_test').toString('base64')}`;
  const { port } = new URL(relay.url);

  const body = await new Promise<string>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: 'http://api.example.test/v1?x=1', headers: { 'proxy-authorization': 'Basic ZXZpbDpldmls', 'x-keep': 'yes' } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString())).on('end', () => resolve(`${res.headers['x-from']} ${text}`));
    });
    req.once('error', reject).end();
  });
  t.equal(body, 'fake hello');
  t.match(seen[0], { method: 'GET', url: 'http://api.example.test/v1?x=1', headers: { 'proxy-authorization': expected, 'x-keep': 'yes' } });

  const tunnel = await new Promise<string>((resolve) => {
    const socket = connect(Number(port), '127.0.0.1', () => socket.write('CONNECT api.example.test:443 HTTP/1.1\r\nHost: api.example.test:443\r\nProxy-Authorization: Basic ZXZpbDpldmls\r\n\r\n'));
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString())).on('close', () => resolve(text));
  });
  t.match(tunnel, /^HTTP\/1\.1 200 Connection established\r\n\r\ntunnel-bytes$/, "credproxy's answer and the tunnel's bytes come back untouched");
  t.match(seen[1], { method: 'CONNECT', url: 'api.example.test:443', headers: { 'proxy-authorization': expected } });

  const origin = await new Promise<number>((resolve) => {
    request({ host: '127.0.0.1', port, path: '/not-a-proxy-request' }, (res) => resolve(res.statusCode ?? 0)).end();
  });
  t.equal(origin, 400, 'an origin-form request is not relayed');

  // A tunnel still open when the relay closes (a background process of the command) is closed with it.
  const open = connect(Number(port), '127.0.0.1');
  open.write('CONNECT hold.example.test:443 HTTP/1.1\r\nHost: hold.example.test:443\r\n\r\n');
  await new Promise((r) => open.once('data', r));
  const closed = new Promise((r) => open.once('close', r));
  await relay.close();
  await closed;
  t.pass('the open tunnel was closed with the relay');
});

t.test("peerUid: the kernel's owner of a loopback connection", { skip: process.platform === 'linux' ? false : 'reads /proc/net/tcp' }, async (t) => {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => server.close());
  const ourPort = (server.address() as { port: number }).port;
  const accepted = new Promise<number | undefined>((resolve) => server.once('connection', (s) => resolve(peerUid(s.remotePort!, ourPort))));
  const client = connect(ourPort, '127.0.0.1');
  t.teardown(() => client.destroy());
  t.equal(await accepted, process.getuid!(), 'the connecting process is this user');
});
