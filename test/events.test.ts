import { createHmac } from 'node:crypto';
import t, { type Test } from 'tap';
import pino from 'pino';
import { Events, signature, type ConnectionEvent } from '../src/events.js';
import { Metrics } from '../src/metrics.js';
import { configDir, LogCapture, startProxy, startUpstream, viaProxy, type Seen } from './support/servers.js';
import { pollUntil } from './support/poll.js';
import { Waiter } from './support/waiter.js';
import { verifySignature } from './support/webhook.js';

const SECRET = 'whsec-test-0123456789';

const verify = verifySignature;

async function setup(t: Test, answer: (n: number) => number | Promise<number>) {
  const deliveries = new Waiter<Seen>();
  let n = 0;
  const hook = await startUpstream((_req, res, body) => {
    const seen = hook.seen.at(-1)!;
    void Promise.resolve(answer(++n)).then((status) => {
      res.writeHead(status).end();
      if (status < 300) deliveries.push({ ...seen, body });
    });
  });
  const up = await startUpstream();
  const dir = configDir(`store: memory\nevents:\n  webhook_url: ${hook.origin}/hooks/credproxy\n  secret: \${HOOK_SECRET}\n`, {
    demo: `hosts: ["127.0.0.1:${up.port}"]\nupstream: http\nauth: { type: bearer }\n`,
  });
  const proxy = await startProxy(dir, { env: { HOOK_SECRET: SECRET }, events: { baseDelayMs: 5, maxDelayMs: 20, attempts: 4 } });
  t.teardown(async () => {
    await proxy.close();
    await hook.close();
    await up.close();
  });
  return { hook, up, proxy, deliveries };
}

t.test('storing a connection sends a signed connection.active event', async (t) => {
  const { hook, proxy, deliveries } = await setup(t, () => 204);
  t.equal((await proxy.connect('alice', 'demo', { credentials: { token: 'tok-1' } })).status, 200);
  const seen = await deliveries.next();
  t.equal(seen.method, 'POST');
  t.equal(seen.url, '/hooks/credproxy');
  t.equal(seen.headers['content-type'], 'application/json');
  t.equal(seen.headers['x-credproxy-event'], 'connection.active');
  t.ok(verify(seen, SECRET), 'the signature verifies with the secret');
  t.notOk(verify(seen, 'another-secret'), 'and not with another one');
  const event = JSON.parse(seen.body.toString()) as ConnectionEvent;
  t.match(event, { type: 'connection.active', entity: 'alice', integration: 'demo', status: 'active' });
  t.match(event.id, /^evt_/);
  t.ok(Number.isFinite(Date.parse(event.at)));
  t.same(Object.keys(event).sort(), ['at', 'entity', 'id', 'integration', 'status', 'type']);
  t.notMatch(seen.body.toString(), /tok-1/, 'no secret in the event');
  t.equal(hook.seen.length, 1);
});

t.test('a failing receiver gets the same event again, with backoff, until it accepts', async (t) => {
  const { hook, proxy, deliveries } = await setup(t, (n) => (n < 3 ? 500 : 200));
  await proxy.connect('bob', 'demo', { credentials: { token: 'tok-2' } });
  const seen = await deliveries.next();
  t.equal(hook.seen.length, 3);
  const ids = hook.seen.map((s) => (JSON.parse(s.body.toString()) as ConnectionEvent).id);
  t.equal(new Set(ids).size, 1, 'one event id across the attempts, so receivers can de-duplicate');
  t.ok(verify(seen, SECRET));
  t.match(proxy.logs.text, /event delivery failed; will retry/);
  await proxy.runtime.events.settled();
  const metrics = await (await fetch(`${proxy.url}/metrics`)).text();
  t.match(metrics, /credproxy_events_total\{type="connection.active",outcome="delivered"\} 1/);
});

t.test('a receiver that never accepts: the event is given up after the attempts', async (t) => {
  const { hook, proxy } = await setup(t, () => 503);
  await proxy.connect('carol', 'demo', { credentials: { token: 'tok-3' } });
  t.ok(await pollUntil(() => hook.seen.length >= 4 && proxy.runtime.events.pending === 0, 30_000), 'the attempts were made and the queue is empty');
  await proxy.runtime.events.settled();
  t.equal(hook.seen.length, 4, 'exactly the configured attempts');
  t.match(proxy.logs.text, /event delivery failed; giving up/);
  const metrics = await (await fetch(`${proxy.url}/metrics`)).text();
  t.match(metrics, /credproxy_events_total\{type="connection.active",outcome="failed"\} 1/);
});

t.test('a slow receiver slows neither the admin API nor proxied requests', async (t) => {
  let release: () => void = () => {};
  const held = new Promise<number>((r) => (release = () => r(200)));
  const { hook, up, proxy, deliveries } = await setup(t, () => held);
  t.equal((await proxy.connect('dave', 'demo', { credentials: { token: 'tok-4' } })).status, 200);
  // The receiver now holds the first delivery open.
  while (hook.seen.length === 0) await new Promise((r) => setImmediate(r));
  t.equal((await proxy.connect('erin', 'demo', { credentials: { token: 'tok-5' } })).status, 200, 'a second PUT answers while the receiver holds the first event');
  for (let i = 0; i < 3; i++) {
    const r = await viaProxy(proxy.port, `${up.origin}/x`, { headers: { 'X-Entity-Id': 'dave' } });
    t.equal(r.status, 200);
  }
  t.equal(up.seen.length, 3, 'proxied requests went through');
  t.equal(hook.seen.length, 1, 'while the first event was still in delivery');
  t.equal(proxy.runtime.events.pending, 2, 'and the second waits its turn');
  release();
  const first = JSON.parse((await deliveries.next()).body.toString()) as ConnectionEvent;
  const second = JSON.parse((await deliveries.next()).body.toString()) as ConnectionEvent;
  t.same([first.entity, second.entity], ['dave', 'erin'], 'delivered in order');
});

t.test('the queue is bounded: the oldest events are dropped, and nothing is sent without a webhook', async (t) => {
  const logs = new LogCapture();
  const metrics = new Metrics();
  const hookSettings: { current?: { webhook_url: string; secret?: string } } = {};
  const events = new Events({ settings: () => hookSettings.current, log: pino(logs), metrics, maxQueue: 2, timeoutMs: 1000, attempts: 1 });
  t.teardown(() => events.close());
  events.emit({ type: 'connection.expired', entity: 'a', integration: 'x', status: 'expired' });
  t.equal(events.pending, 0, 'no webhook_url: nothing is queued');

  let release: () => void = () => {};
  const held = new Promise<void>((r) => (release = r));
  const got: string[] = [];
  const hook = await startUpstream((_req, res, body) => {
    got.push(String((JSON.parse(body.toString()) as ConnectionEvent).entity));
    void held.then(() => res.writeHead(200).end());
  });
  t.teardown(() => hook.close());
  hookSettings.current = { webhook_url: `${hook.origin}/h` };
  for (const entity of ['e1', 'e2', 'e3', 'e4']) events.emit({ type: 'connection.failed', entity, integration: 'x', status: 'failed', reason: 'access_denied' });
  t.equal(events.pending, 3, 'one in delivery, the waiting ones bounded at maxQueue');
  while (hook.seen.length === 0) await new Promise((r) => setImmediate(r));
  release();
  await events.settled();
  t.same(got, ['e1', 'e3', 'e4'], 'the event in delivery and the newest waiting ones survive');
  t.match(logs.text, /event queue full: dropped the oldest waiting event/);
  t.match(logs.text, /webhooks are sent unsigned/, 'no secret: unsigned, and said so');
  t.notOk(hook.seen[0]!.headers['x-credproxy-signature']);
  t.equal((JSON.parse(hook.seen[0]!.body.toString()) as ConnectionEvent).reason, 'access_denied');
  const text = await metrics.registry.metrics();
  t.match(text, /credproxy_events_total\{type="connection.failed",outcome="dropped"\} 1/);
});

t.test('close() cuts a delivery in flight short', async (t) => {
  const logs = new LogCapture();
  const hook = await startUpstream(() => {
    /* never answers */
  });
  t.teardown(() => hook.close());
  const events = new Events({ settings: () => ({ webhook_url: `${hook.origin}/h`, secret: 's' }), log: pino(logs), metrics: new Metrics() });
  events.emit({ type: 'connection.recovered', entity: 'a', integration: 'x', status: 'active' });
  events.emit({ type: 'connection.refresh_failed', entity: 'a', integration: 'x', status: 'active' });
  while (hook.seen.length === 0) await new Promise((r) => setImmediate(r));
  await events.close();
  t.equal(events.pending, 0);
  t.match(logs.text, /events not delivered before shutdown/);
  events.emit({ type: 'connection.active', entity: 'b', integration: 'x', status: 'active' });
  t.equal(events.pending, 0, 'closed: emit does nothing');
});

t.test('signature() is the documented HMAC over "<t>.<body>"', async (t) => {
  const body = '{"a":1}';
  const expected = createHmac('sha256', 'k').update(`1700000000.${body}`).digest('hex');
  t.equal(signature('k', body, 1700000000), `t=1700000000,v1=${expected}`);
});

t.test('status changes become events whoever writes them; token refreshes and repeats do not', async (t) => {
  const { proxy, deliveries } = await setup(t, () => 200);
  const store = proxy.runtime.store;
  await proxy.connect('alice', 'demo', { credentials: { token: 'tok-a' } });
  await proxy.connect('alice', 'demo', { credentials: { token: 'tok-b' } });
  const stored = (await store.get('alice', 'demo'))!;
  // What the OAuth code does: a refresh keeps the status; invalid_grant expires the connection.
  await store.put({ ...stored, credentials: { token: 'tok-c' }, updated_at: Date.now() });
  await store.put({ ...stored, status: 'expired', reason: 'invalid_grant', updated_at: Date.now() });
  // A connect flow that was started and denied.
  const now = Date.now();
  await store.put({ entity: 'bob', integration: 'demo', scheme: 'bearer', params: {}, status: 'initiated', credentials: {}, created_at: now, updated_at: now });
  await store.put({ entity: 'bob', integration: 'demo', scheme: 'bearer', params: {}, status: 'failed', reason: 'access_denied', credentials: {}, created_at: now, updated_at: now });
  // An expired connection stored again through the admin API is active again.
  await proxy.connect('alice', 'demo', { credentials: { token: 'tok-d' } });
  await proxy.runtime.events.settled();
  const got: ConnectionEvent[] = [];
  while (deliveries.length > 0) got.push(JSON.parse((await deliveries.next()).body.toString()) as ConnectionEvent);
  t.same(
    got.map((e) => [e.type, e.entity, e.status, e.reason ?? null]),
    [
      ['connection.active', 'alice', 'active', null],
      ['connection.active', 'alice', 'active', null],
      ['connection.expired', 'alice', 'expired', 'invalid_grant'],
      ['connection.failed', 'bob', 'failed', 'access_denied'],
      ['connection.active', 'alice', 'active', null],
    ],
  );
});
