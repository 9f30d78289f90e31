import net from 'node:net';
import t from 'tap';
import { startRawUpstream } from '../support/raw.js';
import { assertRefused, securityFixture, TOKEN } from '../support/security.js';
import { configDir, startProxy, startUpstream, viaProxy } from '../support/servers.js';
import { within } from '../support/wait-for.js';

t.test('Connection: Authorization, X-Entity-Id cannot strip the injected credential or hide the entity', async (t) => {
  const fx = await securityFixture(t);
  const r = await viaProxy(fx.proxy.port, `${fx.owned.origin}/c`, {
    headers: { 'X-Entity-Id': 'alice', Connection: 'Authorization, X-Entity-Id', Authorization: 'Bearer client-own' },
  });
  t.equal(r.status, 200);
  const seen = fx.owned.seen.at(-1)!;
  t.equal(seen.headers.authorization, `Bearer ${TOKEN}`, 'the injected credential survives');
  t.equal(seen.rawHeaders.filter((h) => h.toLowerCase() === 'authorization').length, 1, 'exactly one Authorization');
  t.notOk('x-entity-id' in seen.headers);
  t.notOk('connection' in seen.headers && /authorization/i.test(String(seen.headers.connection)), 'the client Connection list is not forwarded');
});

t.test('an upstream redirect to another host goes back to the client untouched and is never followed', async (t) => {
  const other = await startUpstream();
  t.teardown(() => other.close());
  const up = await startUpstream((_req, res) => {
    res.writeHead(302, { location: `${other.origin}/stolen?x=1` });
    res.end();
  });
  t.teardown(() => up.close());
  const dir = configDir('store: memory\n', { demo: `hosts: ["127.0.0.1:${up.port}"]\nupstream: http\nauth: { type: bearer }\n` });
  const proxy = await startProxy(dir);
  t.teardown(() => proxy.close());
  await proxy.connect('alice', 'demo', { credentials: { token: TOKEN } });
  const r = await viaProxy(proxy.port, `${up.origin}/go`, { headers: { 'X-Entity-Id': 'alice' } });
  t.equal(r.status, 302);
  t.equal(r.headers.location, `${other.origin}/stolen?x=1`, 'Location unchanged');
  t.notOk(r.headers['x-credproxy-error'], "the upstream's own answer");
  t.equal(up.seen.length, 1);
  t.equal(other.seen.length, 0, 'the redirect target saw nothing');
});

t.test('an upstream connection that returned garbage is never reused for the next entity', async (t) => {
  // Connection 1 answers its first request validly and appends a second, forged response;
  // were the connection pooled, that forgery would answer the next request (bob's).
  const raw = await startRawUpstream((conn) =>
    conn === 1
      ? 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nalice' + 'HTTP/1.1 200 OK\r\nContent-Length: 8\r\nX-Forged: 1\r\n\r\nsmuggled'
      : 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nclean',
  );
  t.teardown(() => raw.close());
  const dir = configDir('store: memory\n', { demo: `hosts: ["127.0.0.1:${raw.port}"]\nupstream: http\nauth: { type: bearer }\n` });
  const proxy = await startProxy(dir);
  t.teardown(() => proxy.close());
  await proxy.connect('alice', 'demo', { credentials: { token: 'alice-token-000' } });
  await proxy.connect('bob', 'demo', { credentials: { token: 'bob-token-000000' } });
  const a = await viaProxy(proxy.port, `${raw.origin}/a`, { headers: { 'X-Entity-Id': 'alice' } });
  t.equal(a.body.toString(), 'alice');
  const b = await viaProxy(proxy.port, `${raw.origin}/b`, { headers: { 'X-Entity-Id': 'bob' } });
  t.equal(b.status, 200);
  t.equal(b.body.toString(), 'clean', "bob gets his own answer, not the forged one queued for him");
  t.notOk(b.headers['x-forged']);
  t.equal(raw.connections, 2, 'bob was sent on a new connection');
  t.match(raw.requests[1], /authorization: Bearer bob-token-000000/i);
});

t.test('an upstream that answers garbage is 502 upstream_error, and the next request is clean', async (t) => {
  const raw = await startRawUpstream((conn) => (conn === 1 ? 'NOT HTTP AT ALL\r\n\r\n' : 'HTTP/1.1 204 No Content\r\n\r\n'));
  t.teardown(() => raw.close());
  const dir = configDir('store: memory\n', { demo: `hosts: ["127.0.0.1:${raw.port}"]\nupstream: http\nauth: { type: bearer }\n` });
  const proxy = await startProxy(dir);
  t.teardown(() => proxy.close());
  await proxy.connect('alice', 'demo', { credentials: { token: 'alice-token-000' } });
  await proxy.connect('bob', 'demo', { credentials: { token: 'bob-token-000000' } });
  const a = await viaProxy(proxy.port, `${raw.origin}/a`, { headers: { 'X-Entity-Id': 'alice' } });
  t.equal(a.status, 502);
  t.equal(a.headers['x-credproxy-error'], 'upstream_error');
  const b = await viaProxy(proxy.port, `${raw.origin}/b`, { headers: { 'X-Entity-Id': 'bob' } });
  t.equal(b.status, 204);
  t.equal(raw.connections, 2);
});

t.test('an upstream that does not answer in time is 504 upstream_timeout', async (t) => {
  const raw = await startRawUpstream(() => undefined);
  t.teardown(() => raw.close());
  const dir = configDir('store: memory\nlimits: { upstream_response_timeout_ms: 150 }\n', {
    demo: `hosts: ["127.0.0.1:${raw.port}"]\nupstream: http\nauth: { type: bearer }\n`,
  });
  const proxy = await startProxy(dir);
  t.teardown(() => proxy.close());
  await proxy.connect('alice', 'demo', { credentials: { token: 'alice-token-000' } });
  const r = await viaProxy(proxy.port, `${raw.origin}/slow`, { headers: { 'X-Entity-Id': 'alice' } });
  t.equal(r.status, 504);
  t.equal(r.headers['x-credproxy-error'], 'upstream_timeout');
});

t.test('a client that disconnects mid-body: the upstream never gets a complete-looking request, the proxy stays up', async (t) => {
  const fx = await securityFixture(t);
  const before = fx.seenCount();
  const arrived = new Promise<void>((resolve) => fx.proxy.server.once('request', () => resolve()));
  const socket = net.connect(fx.proxy.port, '127.0.0.1');
  socket.on('error', () => {});
  socket.write(`POST ${fx.owned.origin}/upload HTTP/1.1\r\nHost: x\r\nX-Entity-Id: alice\r\nContent-Length: 1000\r\n\r\n${'a'.repeat(100)}`);
  await arrived;
  socket.destroy();
  // The proxy's next answer proves it is up; the owned upstream must not have recorded a
  // finished 1000-byte request (its recorder runs on 'end', which an aborted body never sees).
  const r = await viaProxy(fx.proxy.port, `${fx.owned.origin}/after`, { headers: { 'X-Entity-Id': 'alice' } });
  t.equal(r.status, 200);
  const uploads = fx.owned.seen.slice(before).filter((s) => s.url === '/upload');
  t.equal(uploads.length, 0, 'no truncated upload was delivered as complete');
});

t.test('a client that disconnects while the upstream is answering: the upstream request is aborted', async (t) => {
  let release: () => void = () => {};
  const closed = new Promise<void>((resolve) => {
    release = resolve;
  });
  const up = await startUpstream((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    if (req.url !== '/stream') return res.end('done');
    res.write('partial');
    req.socket.on('close', () => release());
  });
  t.teardown(() => up.close());
  const dir = configDir('store: memory\n', { demo: `hosts: ["127.0.0.1:${up.port}"]\nupstream: http\nauth: { type: bearer }\n` });
  const proxy = await startProxy(dir);
  t.teardown(() => proxy.close());
  await proxy.connect('alice', 'demo', { credentials: { token: 'alice-token-000' } });
  const socket = net.connect(proxy.port, '127.0.0.1');
  socket.on('error', () => {});
  socket.write(`GET ${up.origin}/stream HTTP/1.1\r\nHost: x\r\nX-Entity-Id: alice\r\n\r\n`);
  await new Promise<void>((resolve) => socket.once('data', () => resolve()));
  socket.destroy();
  t.ok(await within(closed), 'the upstream connection was closed when the client went away');
  const r = await viaProxy(proxy.port, `${up.origin}/again`, { headers: { 'X-Entity-Id': 'alice' } });
  t.equal(r.status, 200, 'the proxy is still up');
});

t.test('a chunked body with a broken chunk is not delivered upstream as complete', async (t) => {
  const fx = await securityFixture(t);
  const before = fx.seenCount();
  const socket = net.connect(fx.proxy.port, '127.0.0.1');
  const answer = new Promise<string>((resolve) => {
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString()));
    socket.on('close', () => resolve(text));
    socket.on('error', () => resolve(text));
  });
  socket.write(`POST ${fx.owned.origin}/chunks HTTP/1.1\r\nHost: x\r\nX-Entity-Id: alice\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nZZ\r\nbad\r\n0\r\n\r\n`);
  const text = await answer;
  t.notMatch(text, /^HTTP\/1\.1 200/, 'no success answer for a broken body');
  t.equal(fx.owned.seen.slice(before).filter((s) => s.url === '/chunks').length, 0);
  t.equal((await viaProxy(fx.proxy.port, `${fx.owned.origin}/after`, { headers: { 'X-Entity-Id': 'alice' } })).status, 200);
});

t.test('passthrough never carries an integration credential, even when the client names an entity', async (t) => {
  const fx = await securityFixture(t, 'egress: { allow_private: ["127.0.0.0/8"] }\n');
  const r = await viaProxy(fx.proxy.port, `${fx.internal.origin}/p`, { headers: { 'X-Entity-Id': 'alice', 'X-Connection-Label': 'work' } });
  t.equal(r.status, 200);
  const seen = fx.internal.seen.at(-1)!;
  t.notOk(seen.headers.authorization);
  t.notOk(seen.headers['x-entity-id']);
  t.notOk(seen.headers['x-connection-label'], 'credproxy\'s own label header stays with credproxy');
  t.notMatch(JSON.stringify(seen.headers), TOKEN);
  const before = fx.seenCount();
  const denied = await viaProxy(fx.proxy.port, 'http://[fd00::1]/', { headers: { 'X-Entity-Id': 'alice' } });
  assertRefused(t, fx, before, denied, 403, 'host_denied');
});

t.test('a request hidden in a body stays body; pipelined requests are answered one by one', async (t) => {
  const fx = await securityFixture(t);
  const hidden = `GET http://127.0.0.1:${fx.internal.port}/smuggled HTTP/1.1\r\nHost: x\r\nX-Entity-Id: alice\r\n\r\n`;
  const socket = net.connect(fx.proxy.port, '127.0.0.1');
  const text = await new Promise<string>((resolve) => {
    let buf = '';
    socket.on('data', (d: Buffer) => {
      buf += d.toString();
      // Two complete answers: the POST's and the pipelined bad request's.
      if ((buf.match(/HTTP\/1\.1 \d{3}/g) ?? []).length >= 2 && buf.includes('bad_request')) resolve(buf);
    });
    socket.on('close', () => resolve(buf));
    socket.write(
      `POST ${fx.owned.origin}/upload HTTP/1.1\r\nHost: x\r\nX-Entity-Id: alice\r\nContent-Length: ${Buffer.byteLength(hidden)}\r\n\r\n${hidden}` +
        `GET ${fx.owned.origin}/second HTTP/1.1\r\nHost: x\r\nX-Entity-Id: bad,id\r\n\r\n`,
    );
  });
  socket.destroy();
  t.match(text, /^HTTP\/1\.1 200/, 'the POST is answered');
  t.match(text, /HTTP\/1\.1 400[\s\S]*x-credproxy-error: bad_request/i, 'the pipelined bad request gets its own 400');
  const upload = fx.owned.seen.find((s) => s.url === '/upload');
  t.equal(upload?.body.toString(), hidden, 'the hidden request reached the owner as body bytes, verbatim');
  t.equal(fx.internal.seen.length, 0, 'and was never sent anywhere as a request');
  t.equal(fx.owned.seen.filter((s) => s.url === '/second').length, 0);
});
