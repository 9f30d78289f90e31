import { createHash } from 'node:crypto';
import net from 'node:net';
import t from 'tap';
import { pollUntil } from '../support/poll.js';
import { configDir, LOOPBACK_EGRESS, startProxy, startUpstream, viaProxy } from '../support/servers.js';
import { parseResponse, type RawResponse } from '../support/raw.js';

/** A client that sends the request head and part of its body, then holds back the rest. */
function holdBack(port: number, target: string, headers: Record<string, string>, announced: number, sent: Buffer) {
  const socket = net.connect(port, '127.0.0.1');
  let text = '';
  const head = [`PUT ${target} HTTP/1.1`, `Host: ${new URL(target).host}`, `Content-Length: ${announced}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), '', ''].join('\r\n');
  socket.on('connect', () => socket.write(Buffer.concat([Buffer.from(head), sent])));
  socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
  socket.on('error', () => {});
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  const answer = new Promise<RawResponse | undefined>((resolve) => {
    socket.on('data', () => {
      const r = parseResponse(text);
      if (r) resolve(r);
    });
    socket.once('close', () => resolve(parseResponse(text)));
  });
  return { socket, answer, closed };
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

t.test('a body that stops arriving is 408 request_timeout after limits.body_idle_ms, buffered or streamed', async (t) => {
  const up = await startUpstream();
  const dir = configDir(`store: memory\n${LOOPBACK_EGRESS}limits: { body_idle_ms: 200 }\n`, {
    // aws_sigv4 buffers the body to hash it; bearer streams it straight upstream.
    s3: `hosts: ["127.0.0.1:${up.port}"]\npaths: [/s3]\nupstream: http\nauth: { type: aws_sigv4, region: us-east-1, service: s3 }\n`,
    plain: `hosts: ["127.0.0.1:${up.port}"]\npaths: [/plain]\nupstream: http\nauth: { type: bearer }\n`,
  });
  const proxy = await startProxy(dir);
  t.teardown(async () => {
    await proxy.close();
    await up.close();
  });
  t.equal((await proxy.connect('alice', 's3', { credentials: { access_key_id: 'AKIA1', secret_access_key: 's' } })).status, 200);
  t.equal((await proxy.connect('alice', 'plain', { credentials: { token: 'tok' } })).status, 200);
  const alice = { 'X-Entity-Id': 'alice' };
  for (const path of ['/s3/key', '/plain/x']) {
    const started = Date.now();
    const c = holdBack(proxy.port, `${up.origin}${path}`, alice, 1000, Buffer.alloc(990, 1));
    const r = await c.answer;
    const took = Date.now() - started;
    t.equal(r?.status, 408, path);
    t.equal(r?.headers['x-credproxy-error'], 'request_timeout', path);
    t.match(r?.body, /limits\.body_idle_ms/);
    t.equal(r?.headers.connection, 'close', 'the rest of the body cannot become a request');
    // Not before body_idle_ms (the guard must not cut a body early); no upper bound, which would
    // measure the machine's load: the 408 itself shows the guard, not tap's timeout, answered.
    t.ok(took >= 200, `${path}: answered after ${took} ms`);
    await c.closed;
  }
  // And a body that never starts (headers only), without an entity, on the streaming path.
  const bare = holdBack(proxy.port, `${up.origin}/plain/y`, {}, 10, Buffer.alloc(0));
  t.equal((await bare.answer)?.status, 400, 'entity_required is answered first, without waiting for the body');
  const none = holdBack(proxy.port, `${up.origin}/plain/y`, alice, 10, Buffer.alloc(0));
  t.equal((await none.answer)?.status, 408);
  // A chunked body that stops between chunks, buffered and streamed.
  for (const path of ['/s3/chunked', '/plain/chunked']) {
    const s = net.connect(proxy.port, '127.0.0.1');
    let text = '';
    s.on('data', (d: Buffer) => (text += d.toString('latin1')));
    s.write(`PUT ${up.origin}${path} HTTP/1.1\r\nHost: 127.0.0.1:${up.port}\r\nX-Entity-Id: alice\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n`);
    await new Promise((r) => s.once('close', r));
    t.equal(parseResponse(text)?.status, 408, path);
  }
  t.ok(up.seen.every((s) => s.body.length !== 1000 && s.body.length !== 10), 'the upstream never got a complete-looking body');
  t.match(proxy.logs.text, /"status":408/);

  // A slow body that keeps coming (a chunk every 100 ms for 1 s) is not cut.
  const socket = net.connect(proxy.port, '127.0.0.1');
  await new Promise((r) => socket.once('connect', r));
  let text = '';
  socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
  socket.write(`PUT ${up.origin}/s3/slow HTTP/1.1\r\nHost: 127.0.0.1:${up.port}\r\nX-Entity-Id: alice\r\nContent-Length: 10\r\nConnection: close\r\n\r\n`);
  for (let i = 0; i < 10; i++) {
    // Deliberately let time pass: each gap is under body_idle_ms, their sum is over it.
    await new Promise((r) => setTimeout(r, 100));
    socket.write('x');
  }
  await new Promise((r) => socket.once('close', r));
  t.equal(parseResponse(text)?.status, 200, 'slow but steady');
  t.equal(up.seen.at(-1)!.body.toString(), 'xxxxxxxxxx');
});

t.test('an upstream that reads slowly is backpressure, not an idle body', async (t) => {
  const up = await startUpstream();
  // The upstream reads nothing for 600 ms (3 × body_idle_ms) after the head arrives.
  const slow = net.createServer((s) => {
    s.pause();
    let n = 0;
    setTimeout(() => {
      s.on('data', (d: Buffer) => {
        n += d.length;
        if (n >= 8 * 1024 * 1024) s.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok');
      });
      s.resume();
    }, 600);
  });
  await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
  const port = (slow.address() as net.AddressInfo).port;
  const dir = configDir(`store: memory\nlimits: { body_idle_ms: 200 }\n`, { slow: `hosts: ["127.0.0.1:${port}"]\nupstream: http\nauth: { type: bearer }\n` });
  const proxy = await startProxy(dir);
  t.teardown(async () => {
    await proxy.close();
    await up.close();
    await new Promise<void>((r) => slow.close(() => r()));
  });
  t.equal((await proxy.connect('alice', 'slow', { credentials: { token: 'tok' } })).status, 200);
  const r = await viaProxy(proxy.port, `http://127.0.0.1:${port}/upload`, { method: 'PUT', headers: { 'X-Entity-Id': 'alice' }, body: Buffer.alloc(8 * 1024 * 1024, 2) });
  t.equal(r.status, 200, r.body.toString());
});

t.test('limits.replay_budget_bytes: past the budget a body streams unbuffered, counted and logged', async (t) => {
  const up = await startUpstream();
  const dir = configDir(`store: memory\nlimits: { replay_body_bytes: 4096, replay_budget_bytes: 1000, body_idle_ms: 5000 }\n`, {
    s3: `hosts: ["127.0.0.1:${up.port}"]\nupstream: http\nauth: { type: aws_sigv4, region: us-east-1, service: s3 }\n`,
  });
  const proxy = await startProxy(dir);
  t.teardown(async () => {
    await proxy.close();
    await up.close();
  });
  t.equal((await proxy.connect('alice', 's3', { credentials: { access_key_id: 'AKIA1', secret_access_key: 's' } })).status, 200);
  const alice = { 'X-Entity-Id': 'alice' };
  // One slow request holds 900 bytes of the 1000-byte budget.
  const held = holdBack(proxy.port, `${up.origin}/bucket/held`, alice, 1000, Buffer.alloc(900, 3));
  t.ok(await pollUntil(() => proxy.runtime.replayBudget.bytes > 0, 10_000), 'the held body has taken its share of the budget');
  const body = Buffer.alloc(500, 4);
  const over = await viaProxy(proxy.port, `${up.origin}/bucket/over`, { method: 'PUT', headers: alice, body });
  t.equal(over.status, 200);
  t.equal(up.seen.at(-1)!.headers['x-amz-content-sha256'], 'UNSIGNED-PAYLOAD', 'streamed, not buffered');
  t.same(up.seen.at(-1)!.body, body, 'and whole');
  t.match(proxy.logs.text, /replay budget is spent/);
  const metrics = await (await fetch(`${proxy.url}/metrics`)).text();
  t.match(metrics, /credproxy_replay_unbuffered_total\{integration="s3"\} 1/);
  // The held request finishes; its bytes go back to the budget.
  held.socket.write(Buffer.alloc(100, 3));
  t.equal((await held.answer)?.status, 200);
  held.socket.destroy();
  t.equal(up.seen.find((s) => s.url === '/bucket/held')!.headers['x-amz-content-sha256'], sha(Buffer.alloc(1000, 3)), 'within the budget: buffered and hashed');
  const again = await viaProxy(proxy.port, `${up.origin}/bucket/again`, { method: 'PUT', headers: alice, body });
  t.equal(again.status, 200);
  t.equal(up.seen.at(-1)!.headers['x-amz-content-sha256'], sha(body), 'the budget was given back');
});

t.test("credproxy's own API: a stalled body is 408, and one refused before it is read is cut off", async (t) => {
  const dir = configDir('store: memory\nlimits: { body_idle_ms: 200 }\n', {
    plain: 'hosts: ["api.example.test"]\nauth: { type: bearer }\n',
  });
  const proxy = await startProxy(dir);
  t.teardown(() => proxy.close());
  const send = (auth: string) => {
    const s = net.connect(proxy.port, '127.0.0.1');
    let text = '';
    s.on('data', (d: Buffer) => (text += d.toString('latin1')));
    s.on('error', () => {});
    s.write(`PUT /api/entities/alice/connections/plain HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"credentials":`);
    return new Promise<{ text: string; ms: number }>((r) => {
      const started = Date.now();
      s.once('close', () => r({ text, ms: Date.now() - started }));
    });
  };
  const admin = await send('Authorization: Bearer test-admin-token-0123456789\r\n');
  t.equal(parseResponse(admin.text)?.status, 408);
  t.equal(parseResponse(admin.text)?.headers['x-credproxy-error'], 'request_timeout');
  const anonymous = await send('');
  t.equal(parseResponse(anonymous.text)?.status, 401, 'refused at once');
  t.ok(anonymous.ms < 3000, `and the connection closed after ${anonymous.ms} ms instead of waiting for the body for ever`);
});
