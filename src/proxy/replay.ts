import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { CredproxyError } from '../errors.js';
import type { Injection } from './credential.js';

/** A request body as it will be sent: held whole (replayable) or streamed through. */
export interface PreparedBody {
  body: Readable | Buffer | null;
  replayable: boolean;
}

/**
 * Buffers the request body when it fits in `limit` bytes, so the request can be sent again
 * after a refresh. A larger body streams as before: what was read so far goes first, the
 * rest follows from the socket, and nothing is held whole.
 */
export async function prepareBody(req: IncomingMessage, limit: number): Promise<PreparedBody> {
  const te = req.headers['transfer-encoding'];
  const cl = req.headers['content-length'];
  if (te === undefined && (cl === undefined || cl === '0')) return { body: null, replayable: true };
  if (te === undefined && Number(cl) > limit) return { body: req, replayable: false };
  const it = (req as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  const chunks: Buffer[] = [];
  let size = 0;
  const next = async () => {
    try {
      return await it.next();
    } catch {
      throw new CredproxyError('bad_request', 'the request body broke off before its end');
    }
  };
  for (;;) {
    const { value, done } = await next();
    if (done) return { body: Buffer.concat(chunks), replayable: true };
    chunks.push(value);
    size += value.length;
    if (size > limit) break;
  }
  async function* rest() {
    yield* chunks;
    for (;;) {
      const { value, done } = await it.next();
      if (done) return;
      yield value;
    }
  }
  return { body: Readable.from(rest(), { objectMode: false }), replayable: false };
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
export async function forwardWithReplay(plan: ReplayPlan): Promise<ReplayOutcome> {
  const { injection, refreshOn } = plan;
  const refusal = (status: number) => refreshOn.includes(status);
  if (!injection?.refreshable || refreshOn.length === 0) {
    return { status: await plan.send(injection), refreshed: false, replayed: false };
  }
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
