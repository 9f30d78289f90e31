import net from 'node:net';
import t, { type Test } from 'tap';
import { relay } from '../../src/proxy/relay.js';
import { waitFor, within } from '../support/wait-for.js';

/**
 * client ⇄ [front socket — relay — back socket] ⇄ target, all on loopback, every socket
 * half-open capable as tunnels are. Returns the client socket, the target's socket and a
 * promise of the relay's onDone.
 */
async function tunnel(t: Test) {
  let targetSide!: (s: net.Socket) => void;
  const targetSocket = new Promise<net.Socket>((r) => (targetSide = r));
  const target = net.createServer({ allowHalfOpen: true }, (s) => targetSide(s));
  let attached!: () => void;
  const relayed = new Promise<void>((r) => (attached = r));
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const front = net.createServer({ allowHalfOpen: true }, (s) => {
    const back = net.connect({ port: (target.address() as net.AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
    // The relay handles errors once attached; before that (and in the test's aborts) they are expected.
    s.on('error', () => {});
    back.on('error', () => {});
    back.once('connect', () => {
      relay(s, back, done);
      attached();
    });
  });
  await Promise.all([target, front].map((srv) => new Promise<void>((r) => srv.listen(0, '127.0.0.1', r))));
  t.teardown(() => Promise.all([target, front].map((srv) => new Promise<void>((r) => srv.close(() => r())))));
  const client = net.connect({ port: (front.address() as net.AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
  client.on('error', () => {});
  const [far] = await Promise.all([targetSocket, relayed]);
  far.on('error', () => {});
  // A failing test must not leave sockets that keep the servers' close() waiting.
  t.teardown(() => {
    client.destroy();
    far.destroy();
  });
  return { client, far, finished };
}

const collect = (s: net.Socket) => {
  const chunks: Buffer[] = [];
  s.on('data', (d: Buffer) => chunks.push(d));
  return () => Buffer.concat(chunks).toString();
};

t.test('bytes both ways; a half-close passes on while the other direction keeps flowing', async (t) => {
  const { client, far, finished } = await tunnel(t);
  const atFar = collect(far);
  const atClient = collect(client);
  client.end('request');
  t.ok(await waitFor(far, 'end'), 'the client’s FIN reached the target');
  t.equal(atFar(), 'request');
  far.write('answer after the client finished sending');
  far.end();
  t.ok(await waitFor(client, 'end'), 'and the target’s FIN the client');
  t.equal(atClient(), 'answer after the client finished sending');
  t.ok(await within(finished), 'onDone once both directions are done');
});

t.test('a client that aborts (RST) tears down the target side, and the relay is done', async (t) => {
  const { client, far, finished } = await tunnel(t);
  const farEnded = waitFor(far, 'end');
  client.resetAndDestroy();
  t.ok(await farEnded, 'the connection to the target is closed from the relay’s side');
  t.ok(await within(finished));
});

t.test('a target that resets tears down the client side', async (t) => {
  const { client, far, finished } = await tunnel(t);
  const clientEnded = waitFor(client, 'end');
  far.resetAndDestroy();
  t.ok(await clientEnded, 'the connection to the client is closed from the relay’s side');
  t.ok(await within(finished));
});

t.test('backpressure: a large transfer arrives whole', async (t) => {
  const { client, far, finished } = await tunnel(t);
  let received = 0;
  far.on('data', (d: Buffer) => (received += d.length));
  const ended = waitFor(far, 'end', 30_000);
  const chunk = Buffer.alloc(64 * 1024, 7);
  for (let i = 0; i < 128; i++) if (!client.write(chunk)) await waitFor(client, 'drain', 30_000);
  client.end();
  t.ok(await ended);
  t.equal(received, 128 * 64 * 1024);
  far.end();
  t.ok(await within(finished));
});
