import type { IncomingMessage, ServerResponse } from 'node:http';
import { CredproxyError } from '../errors.js';

/**
 * Two bounds on proxied request bodies, so that slowly sent bodies cannot pin memory and
 * connections for ever (node's `requestTimeout` is 0: uploads may take their time):
 * `limits.body_idle_ms`, how long a body may send nothing while credproxy waits for it, and
 * `limits.replay_budget_bytes`, one budget for the bodies held whole for a replay or a
 * signature across all requests of this instance.
 */

/**
 * Calls `onIdle` once the client has sent no body byte for `ms` while credproxy was waiting
 * for one. Waiting means the request stream holds nothing unread: while its reader (an
 * upstream that reads slowly, through undici) leaves bytes in it, that is backpressure, not
 * an idle client; with the stream empty node keeps reading the socket, so a client that
 * sends shows up in the socket's byte count. Progress is read from that count, never from
 * `data` events, which would switch the stream into flowing mode behind its reader's back.
 * Returns the stop function.
 */
export function watchBodyIdle(req: IncomingMessage, ms: number, onIdle: () => void): () => void {
  const socket = req.socket;
  const step = Math.max(5, Math.floor(ms / 4));
  let seen = socket.bytesRead;
  let last = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const stop = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    req.off('end', stop);
    req.off('close', stop);
  };
  const check = () => {
    const now = Date.now();
    const read = socket.bytesRead;
    if (read !== seen || req.readableLength > 0) {
      seen = read;
      last = now;
    } else if (now - last >= ms) {
      stop();
      return onIdle();
    }
    timer = setTimeout(check, step);
    timer.unref();
  };
  timer = setTimeout(check, step);
  timer.unref();
  req.once('end', stop);
  req.once('close', stop);
  return stop;
}

export function hasBody(req: IncomingMessage): boolean {
  const cl = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (cl !== undefined && cl !== '0');
}

/**
 * Puts a request's body under `limits.body_idle_ms` (proxied requests and credproxy's own API
 * alike). Returns what ended it, if it went idle: its readers fail, and the pipeline answers
 * this 408 whatever they made of it. The watch outlives the answer: after an early refusal
 * node reads the rest of the body to reuse the connection, and a client that never sends it
 * is cut off then.
 */
export function guardBody(req: IncomingMessage, res: ServerResponse, ms: number): () => CredproxyError | undefined {
  // A request without a body (most) cannot go idle: one shared answer, no closure per request.
  if (!hasBody(req) || req.complete) return NEVER_IDLE;
  let idle: CredproxyError | undefined;
  watchBodyIdle(req, ms, () => {
    if (res.headersSent) return void req.socket?.destroy();
    failBody(req, (idle = bodyIdleError(ms)));
  });
  return () => idle;
}

const NEVER_IDLE = (): CredproxyError | undefined => undefined;

/** The 408 for an idle body; the connection is closed, since the rest of the body may still come. */
export function bodyIdleError(ms: number): CredproxyError {
  return new CredproxyError('request_timeout', `the request body sent nothing for ${ms} ms (limits.body_idle_ms); send it without pauses`, { connection: 'close' });
}

/**
 * Ends a request whose body went idle: its readers (the replay buffer, the signer, undici
 * streaming it upstream) see `err` and the pipeline answers it. As forward.ts does, the
 * stream is destroyed without its socket, which still has to carry the answer.
 */
export function failBody(req: IncomingMessage, err: Error): void {
  if (req.destroyed) return;
  const socket = req.socket;
  // No reader may be attached yet (the pipeline is still resolving a credential): the error
  // must not go unhandled; the handler knows it from its onIdle callback.
  req.on('error', () => {});
  (req as { socket: unknown }).socket = null;
  req.destroy(err);
  // IncomingMessage's _destroy looked at the socket synchronously; the log and the audit still read it.
  (req as { socket: unknown }).socket = socket;
}


