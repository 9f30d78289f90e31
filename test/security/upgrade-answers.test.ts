import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { SCRUBBED } from '../../src/proxy/scrub.js';
import { configDir, startProxy, type TestProxy } from '../support/servers.js';
import { connectVia } from '../support/tunnel.js';

/**
 * Issue 15 #3: the upstream's answer to an upgrade request (a refusal, or the 101 itself)
 * used to be written to the client raw, so an upstream could forge X-Credproxy-Error and
 * `scrub_responses` did not apply to it. It now goes through the same filtering and
 * scrubbing as every other response.
 */
const TOKEN = 'upgrade-answer-token-5d1e';

/** An upstream that answers upgrades itself: `/refuse` with a 401 echoing the credential, anything else with a 101 that does the same. */
async function hostileUpstream(t: Test): Promise<number> {
  const server = http.createServer((_req, res) => res.end('plain'));
  const sockets = new Set<Duplex>();
  type Duplex = import('node:stream').Duplex;
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex) => {
    sockets.add(socket);
    socket.on('error', () => {});
    const auth = req.headers.authorization ?? '';
    if ((req.url ?? '').startsWith('/refuse')) {
      const body = `no entry for ${auth}`;
      socket.end(
        `HTTP/1.1 401 Unauthorized\r\nX-Credproxy-Error: forged\r\nX-Echo: ${auth}\r\nContent-Type: text/plain\r\n` +
          `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
      return;
    }
    const accept = createHash('sha1').update(`${String(req.headers['sec-websocket-key'])}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n` +
        `X-Credproxy-Error: forged\r\nX-Echo: ${auth}\r\n\r\n`,
    );
    socket.pipe(socket); // raw echo: what the client sends comes back
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return (server.address() as AddressInfo).port;
}

async function fixture(t: Test, scrub: boolean): Promise<{ proxy: TestProxy; port: number }> {
  const port = await hostileUpstream(t);
  const dir = configDir(`store: memory\ntls: { ca_dir: ${mkdtempSync(join(tmpdir(), 'credproxy-answers-ca-'))} }\n`, {
    chat: `hosts: ["127.0.0.1:${port}"]\nupstream: http\nauth: { type: bearer }\n${scrub ? 'scrub_responses: true\n' : ''}`,
  });
  const proxy = await startProxy(dir);
  t.teardown(() => proxy.close());
  const put = await proxy.connect('alice', 'chat', { credentials: { token: TOKEN } });
  if (put.status !== 200) throw new Error(`connect: ${put.status}`);
  return { proxy, port };
}

function upgradeText(target: string, host: string): string {
  return (
    `GET ${target} HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
    `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\nX-Entity-Id: alice\r\n\r\n`
  );
}

interface Answer {
  status: number;
  headers: Record<string, string[]>;
  /** everything after the header section, as received (chunk framing included) */
  rest: string;
  socket: Socket;
}

/** Writes `text` and reads the answer: until the socket ends, or until `until` shows up after the headers. */
function exchange(socket: Socket, text: string, until?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const done = () => {
      socket.off('data', onData);
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return reject(new Error(`no answer: ${JSON.stringify(buf)}`));
      const [statusLine = '', ...lines] = buf.slice(0, end).split('\r\n');
      const headers: Record<string, string[]> = {};
      for (const l of lines) {
        const i = l.indexOf(':');
        (headers[l.slice(0, i).trim().toLowerCase()] ??= []).push(l.slice(i + 1).trim());
      }
      resolve({ status: Number(statusLine.split(' ')[1]), headers, rest: buf.slice(end + 4), socket });
    };
    const onData = (d: Buffer) => {
      buf += d.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (until !== undefined && end !== -1 && buf.slice(end + 4).includes(until)) done();
    };
    socket.on('data', onData);
    socket.once('end', done);
    socket.once('error', reject);
    socket.write(text);
  });
}

function direct(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

function refusalChecks(t: Test, a: Answer, scrubbed: boolean): void {
  t.equal(a.status, 401, "the upstream's refusal comes back");
  t.notOk(a.headers['x-credproxy-error'], 'an upstream cannot forge X-Credproxy-Error');
  t.equal(a.headers.connection?.join(), 'close', 'the connection ends with the answer');
  if (scrubbed) {
    t.match(a.headers['x-echo']?.join(), SCRUBBED, 'the echoed credential is scrubbed from the headers');
    t.notMatch(a.headers['x-echo']?.join(), TOKEN);
    t.notMatch(a.rest, TOKEN, 'and from the body');
    t.match(a.rest, SCRUBBED);
  } else {
    t.same(a.headers['x-echo'], [`Bearer ${TOKEN}`], 'without scrub_responses the echo is untouched');
  }
}

t.test('a refused upgrade: hop-by-hop and X-Credproxy-Error dropped, scrub_responses applied', async (t) => {
  for (const scrub of [true, false]) {
    await t.test(`scrub_responses: ${scrub}`, async (t) => {
      const { proxy, port } = await fixture(t, scrub);
      const host = `127.0.0.1:${port}`;
      const a = await exchange(await direct(proxy.port), upgradeText(`ws://${host}/refuse`, host));
      refusalChecks(t, a, scrub);
    });
  }
});

t.test('a refused upgrade inside a terminated tunnel gets the same treatment', async (t) => {
  const { proxy, port } = await fixture(t, true);
  const host = `127.0.0.1:${port}`;
  const tunnel = await connectVia(proxy.port, host);
  t.equal(tunnel.status, 200);
  const a = await exchange(tunnel.socket, upgradeText('/refuse', host));
  refusalChecks(t, a, true);
});

t.test('the 101: its headers are filtered and scrubbed, then bytes flow both ways', async (t) => {
  const { proxy, port } = await fixture(t, true);
  const host = `127.0.0.1:${port}`;
  const socket = await direct(proxy.port);
  t.teardown(() => socket.destroy());
  const a = await exchange(socket, `${upgradeText(`ws://${host}/live`, host)}ping-1`, 'ping-1');
  t.equal(a.status, 101);
  t.notOk(a.headers['x-credproxy-error'], 'an upstream cannot forge X-Credproxy-Error on a 101');
  t.match(a.headers['x-echo']?.join(), SCRUBBED, 'the echoed credential is scrubbed from the 101');
  t.notMatch(JSON.stringify(a.headers), TOKEN);
  t.same(a.headers.upgrade, ['websocket']);
  t.same(a.headers.connection, ['Upgrade']);
  t.ok(a.headers['sec-websocket-accept'], 'the handshake answer is kept');
  t.equal(a.rest, 'ping-1', 'bytes sent with the request reached the upstream and came back');
  const more = new Promise<string>((r) => socket.once('data', (d: Buffer) => r(d.toString())));
  socket.write('ping-2');
  t.equal(await more, 'ping-2');
});
