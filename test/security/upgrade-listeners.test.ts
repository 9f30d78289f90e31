import type { Socket } from 'node:net';
import t, { type Test } from 'tap';
import { setup } from '../support/servers.js';
import { connectVia } from '../support/tunnel.js';

/**
 * Issue 15 #7: every `Upgrade: h2c` request (declined and served as HTTP/1.1, upgrade.ts)
 * added an `error` and a `close` listener to its socket, so one keep-alive connection sending
 * thousands of them grew without bound (5,000 → MaxListenersExceededWarning). Per-socket
 * listeners are now registered once: the count after N requests equals the count after one.
 */
const N = Number(process.env.UPGRADE_LISTENERS_N ?? 300);

function listeners(socket: Socket): Record<string, number> {
  const out: Record<string, number> = {};
  for (const name of socket.eventNames()) out[String(name)] = socket.listenerCount(name);
  return out;
}

const total = (l: Record<string, number>) => Object.values(l).reduce((a, b) => a + b, 0);

/** Sends `count` h2c requests one after the other on `socket`, reading each answer. */
async function h2cRequests(socket: Socket, target: string, host: string, count: number): Promise<void> {
  let buf = '';
  let waiting: (() => void) | undefined;
  socket.on('data', (d: Buffer) => {
    buf += d.toString('latin1');
    waiting?.();
  });
  for (let i = 0; i < count; i++) {
    await new Promise<void>((resolve, reject) => {
      const check = () => {
        // The echo upstream answers chunked: one response ends at the terminating chunk.
        const end = buf.indexOf('\r\n0\r\n\r\n');
        if (end === -1) return;
        const status = buf.slice(9, 12);
        buf = buf.slice(end + 7);
        waiting = undefined;
        if (status !== '200') return reject(new Error(`status ${status}`));
        resolve();
      };
      waiting = check;
      socket.write(
        `GET ${target} HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n` +
          `HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nX-Entity-Id: alice\r\n\r\n`,
      );
      check();
    });
  }
}

async function fixture(t: Test) {
  const s = await setup(t, {
    settings: 'store: memory\n',
    caInDir: true,
    integrations: (up) => ({ plain: `hosts: ["127.0.0.1:${up.port}"]\nupstream: http\nauth: { type: bearer }\n` }),
  });
  await s.proxy.connect('alice', 'plain', { credentials: { token: 'h2c-secret-token' } });
  return s;
}

t.test(`${N} h2c requests on one keep-alive connection add no listeners to its socket`, async (t) => {
  const { up, proxy } = await fixture(t);
  const host = `127.0.0.1:${up.port}`;
  await t.test('absolute form', async (t) => {
    const accepted = new Promise<Socket>((r) => proxy.server.once('connection', r));
    const { connect } = await import('node:net');
    const client = connect(proxy.port, '127.0.0.1');
    t.teardown(() => client.destroy());
    const server = await accepted;
    await h2cRequests(client, `http://${host}/x`, host, 1);
    const after1 = listeners(server);
    await h2cRequests(client, `http://${host}/x`, host, N - 1);
    const afterN = listeners(server);
    t.comment(`server socket listeners after 1 request: ${total(after1)}, after ${N}: ${total(afterN)} ${JSON.stringify(afterN)}`);
    t.same(afterN, after1, 'the same listeners after N requests as after one');
  });
  await t.test('inside a plain-HTTP tunnel', async (t) => {
    const accepted = new Promise<Socket>((r) => proxy.server.once('connection', r));
    const tunnel = await connectVia(proxy.port, host);
    t.teardown(() => tunnel.socket.destroy());
    t.equal(tunnel.status, 200);
    const server = await accepted;
    await h2cRequests(tunnel.socket, '/x', host, 1);
    const after1 = listeners(server);
    await h2cRequests(tunnel.socket, '/x', host, N - 1);
    const afterN = listeners(server);
    t.comment(`tunnel socket listeners after 1 request: ${total(after1)}, after ${N}: ${total(afterN)}`);
    t.same(afterN, after1, 'the same listeners after N requests as after one');
  });
  t.equal(up.seen.length, 2 * N, 'every request was served');
});
