import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { CredproxyError, isCredproxyError } from '../errors.js';
import type { ReplayBudget } from '../limits.js';
import type { Injection } from './types.js';

/** A request body as it will be sent: held whole (replayable) or streamed through. */
export interface PreparedBody {
  body: Readable | Buffer | null;
  replayable: boolean;
  /** it fit in `limit`, but the replay budget was spent: it streams unbuffered, never replayed */
  overBudget?: boolean;
  /** gives the bytes held for it back to the replay budget (once the request is done) */
  release?: () => void;
}

/**
 * Buffers the request body when it fits in `limit` bytes and in what is left of the replay
 * `budget` (shared by all requests), so the request can be sent again after a refresh, or
 * signed. A larger body, or one the budget cannot hold, streams as before: what was read so
 * far goes first, the rest follows from the socket, and nothing is held whole.
 */
export async function prepareBody(req: IncomingMessage, limit: number, budget?: ReplayBudget): Promise<PreparedBody> {
  const te = req.headers['transfer-encoding'];
  const cl = req.headers['content-length'];
  if (te === undefined && (cl === undefined || cl === '0')) return { body: null, replayable: true };
  if (te === undefined && Number(cl) > limit) return { body: req, replayable: false };
  const it = (req as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  const chunks: Buffer[] = [];
  let size = 0;
  let held = 0;
  const release = () => {
    budget?.release(held);
    held = 0;
  };
  const next = async () => {
    try {
      return await it.next();
    } catch (err) {
      release();
      // An idle body (body-guard.ts) says so itself: 408, not a broken body.
      if (isCredproxyError(err)) throw err;
      throw new CredproxyError('bad_request', 'the request body broke off before its end');
    }
  };
  let overBudget = false;
  for (;;) {
    const { value, done } = await next();
    if (done) return { body: Buffer.concat(chunks), replayable: true, release };
    chunks.push(value);
    size += value.length;
    if (size > limit) break;
    if (budget && !budget.take(value.length)) {
      overBudget = true;
      break;
    }
    held += value.length;
  }
  // Streamed from here: what was read goes out first, with backpressure, and is not held for a replay.
  release();
  async function* rest() {
    yield* chunks;
    for (;;) {
      const { value, done } = await it.next();
      if (done) return;
      yield value;
    }
  }
  return { body: Readable.from(rest(), { objectMode: false }), replayable: false, overBudget };
}

export interface ReplayPlan {
  refreshOn: readonly number[];
  injection: Injection | undefined;
  replayable: boolean;
  /** sends the request with this injection; `holdBack` as in forward() */
  send(injection: Injection | undefined, holdBack?: (status: number) => boolean): Promise<number>;
  /** a newer credential than `stale` (refreshes unless someone already did) */
  refresh(stale: string | undefined): Promise<Injection>;
  /** the upstream refused the token and the request cannot be replayed: refresh before its next use */
  markStale(token: string | undefined): void;
}

export interface ReplayOutcome {
  status: number;
  refreshed: boolean;
  replayed: boolean;
}

/**
 * DESIGN step 6: on a `refresh_on` status for a refreshable credential, refresh, then send
 * the request once more when its body was buffered. The refused answer is dropped only when
 * a replay will take its place; otherwise it goes back to the client as is.
 */
export function forwardWithReplay(plan: ReplayPlan): Promise<ReplayOutcome> {
  const { injection, refreshOn } = plan;
  // Nothing a refresh could cure (the common case): one send, no async frame around it.
  if (!injection?.refreshable || refreshOn.length === 0) return plan.send(injection).then(sentOnce);
  return withRefresh(plan, injection, refreshOn);
}

const sentOnce = (status: number): ReplayOutcome => ({ status, refreshed: false, replayed: false });

async function withRefresh(plan: ReplayPlan, injection: Injection, refreshOn: readonly number[]): Promise<ReplayOutcome> {
  const refusal = (status: number) => refreshOn.includes(status);
  if (!plan.replayable) {
    const status = await plan.send(injection);
    if (refusal(status)) plan.markStale(injection.token);
    return { status, refreshed: false, replayed: false };
  }
  const first = await plan.send(injection, refusal);
  if (!refusal(first)) return { status: first, refreshed: false, replayed: false };
  const next = await plan.refresh(injection.token);
  return { status: await plan.send(next), refreshed: true, replayed: true };
}
