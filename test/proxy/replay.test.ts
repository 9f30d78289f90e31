import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import t, { type Test } from 'tap';
import { ReplayBudget } from '../../src/limits.js';
import { forwardWithReplay, prepareBody, type PreparedBody, type ReplayPlan } from '../../src/proxy/replay.js';
import type { Injection } from '../../src/proxy/types.js';

/**
 * A loopback server that runs prepareBody on each request it gets and hands back what it
 * made of the body, so the function reads a real IncomingMessage.
 */
async function bodyServer(t: Test, limit: number, budget?: ReplayBudget) {
  const results: Array<{ prepared: PreparedBody; bytes: Buffer; budgetDuring: number }> = [];
  const server = http.createServer(async (req, res) => {
    const prepared = await prepareBody(req, limit, budget);
    const budgetDuring = budget?.bytes ?? 0;
    const body = prepared.body;
    const bytes = body === null ? Buffer.alloc(0) : Buffer.isBuffer(body) ? body : Buffer.concat(await (body as Readable).toArray());
    prepared.release?.();
    results.push({ prepared, bytes, budgetDuring });
    res.end('ok');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const port = (server.address() as AddressInfo).port;
  const send = async (body: Buffer | undefined, headers: Record<string, string> = {}) => {
    await fetch(`http://127.0.0.1:${port}/`, { method: 'PUT', body, headers });
    return results.at(-1)!;
  };
  return { send };
}

t.test('prepareBody: no body, a body within the limit (held whole), one over it (streamed)', async (t) => {
  const budget = new ReplayBudget(() => 1_000_000);
  const { send } = await bodyServer(t, 100, budget);
  const none = await send(undefined);
  t.same({ body: none.prepared.body, replayable: none.prepared.replayable }, { body: null, replayable: true });
  const small = await send(Buffer.alloc(100, 1));
  t.ok(Buffer.isBuffer(small.prepared.body), 'held whole');
  t.equal(small.prepared.replayable, true);
  t.equal(small.budgetDuring, 100, 'the held bytes are counted against the budget');
  const big = await send(Buffer.alloc(101, 2));
  t.equal(big.prepared.replayable, false);
  t.notOk(Buffer.isBuffer(big.prepared.body), 'streamed');
  t.same(big.bytes, Buffer.alloc(101, 2), 'and whole');
  t.equal(budget.bytes, 0, 'every byte given back');
});

t.test('prepareBody: a chunked body over the limit streams the bytes already read first', async (t) => {
  const body = Buffer.from('0123456789abcdefghij');
  const chunked = await sendStream(t, 10, Readable.from([body.subarray(0, 8), body.subarray(8)]));
  t.equal(chunked.prepared.replayable, false);
  t.same(chunked.bytes, body);
});

async function sendStream(t: Test, limit: number, stream: Readable) {
  const results: Array<{ prepared: PreparedBody; bytes: Buffer }> = [];
  const server = http.createServer(async (req, res) => {
    const prepared = await prepareBody(req, limit);
    const b = prepared.body;
    const bytes = b === null ? Buffer.alloc(0) : Buffer.isBuffer(b) ? b : Buffer.concat(await (b as Readable).toArray());
    results.push({ prepared, bytes });
    res.end('ok');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  await new Promise<void>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, method: 'PUT', headers: { 'transfer-encoding': 'chunked' } }, (res) => {
      res.resume();
      res.on('end', resolve);
    });
    req.on('error', reject);
    stream.pipe(req);
  });
  return results[0]!;
}

t.test('prepareBody: when the replay budget is spent the body streams, marked overBudget', async (t) => {
  const budget = new ReplayBudget(() => 50);
  t.ok(budget.take(40), 'someone else holds 40 of 50');
  const { send } = await bodyServer(t, 100, budget);
  const r = await send(Buffer.alloc(30, 3));
  t.equal(r.prepared.replayable, false);
  t.equal(r.prepared.overBudget, true);
  t.same(r.bytes, Buffer.alloc(30, 3));
  t.equal(budget.bytes, 40, 'what this body took was given back');
});

function plan(statuses: number[], opts: { replayable?: boolean; refreshable?: boolean; refreshOn?: number[] } = {}) {
  const sent: Array<{ token: string | undefined; heldBack: boolean }> = [];
  const stale: Array<string | undefined> = [];
  const refreshed: Array<string | undefined> = [];
  const inj = (token: string): Injection => ({ headers: [], query: [], connection: undefined, token, refreshable: opts.refreshable ?? true });
  const p: ReplayPlan = {
    refreshOn: opts.refreshOn ?? [401],
    injection: inj('old'),
    replayable: opts.replayable ?? true,
    send: async (i, holdBack) => {
      const status = statuses[sent.length]!;
      sent.push({ token: i?.token, heldBack: holdBack?.(status) ?? false });
      return status;
    },
    refresh: async (s) => {
      refreshed.push(s);
      return inj('new');
    },
    markStale: (tok) => stale.push(tok),
  };
  return { p, sent, stale, refreshed };
}

t.test('forwardWithReplay: a refused replayable request is refreshed and sent once more', async (t) => {
  const { p, sent, refreshed } = plan([401, 200]);
  t.same(await forwardWithReplay(p), { status: 200, refreshed: true, replayed: true });
  t.same(sent, [{ token: 'old', heldBack: true }, { token: 'new', heldBack: false }], 'the refused answer was held back for the replay');
  t.same(refreshed, ['old'], 'the refresh is told which token was refused');
  const again = plan([401, 401]);
  t.same(await forwardWithReplay(again.p), { status: 401, refreshed: true, replayed: true }, 'one replay, not a loop');
  t.equal(again.sent.length, 2);
});

t.test('forwardWithReplay: accepted, not refreshable, or not replayable requests are sent once', async (t) => {
  const ok = plan([200]);
  t.same(await forwardWithReplay(ok.p), { status: 200, refreshed: false, replayed: false });
  const fixed = plan([401], { refreshable: false });
  t.same(await forwardWithReplay(fixed.p), { status: 401, refreshed: false, replayed: false });
  t.same(fixed.sent, [{ token: 'old', heldBack: false }], 'nothing held back: the client gets the answer');
  const noStatuses = plan([401], { refreshOn: [] });
  t.equal((await forwardWithReplay(noStatuses.p)).refreshed, false);
  const streamed = plan([401], { replayable: false });
  t.same(await forwardWithReplay(streamed.p), { status: 401, refreshed: false, replayed: false });
  t.same(streamed.stale, ['old'], 'a refused token that could not be replayed is refreshed before its next use');
  t.same(streamed.refreshed, []);
});
