import type { Logger } from 'pino';
import { CredproxyError } from '../errors.js';
import type { Metrics } from '../metrics.js';

/**
 * Which store operation failed: the `op` label of credproxy_store_failures_total, a fixed set
 * so that no request can grow it.
 */
export type StoreOp =
  | 'connection.get'
  | 'connection.put'
  | 'connection.list'
  | 'connection.scan'
  | 'connection.delete'
  | 'locked_update'
  | 'rate_limit'
  | 'entity_token'
  | 'link'
  | 'flow_state'
  | 'ui_session'
  | 'ping';

/** A 503 store_unavailable that remembers which operation failed and why (`cause`). */
export class StoreUnavailableError extends CredproxyError {
  constructor(
    readonly op: StoreOp,
    cause: unknown,
    message = 'the store does not answer',
  ) {
    super('store_unavailable', message, {}, { cause });
  }
}

/**
 * The answer to a store failure: 503 store_unavailable with the failure kept as `cause`. An
 * error that already is an answer (a 4xx the store raised, a 503 from a deeper call) passes
 * unchanged, so a failure is wrapped, logged and counted once.
 */
export function storeUnavailable(err: unknown, op: StoreOp, message?: string): CredproxyError {
  if (err instanceof CredproxyError) return err;
  return new StoreUnavailableError(op, err, message);
}

/** Runs one store call; a failure becomes storeUnavailable(err, op). */
export async function storeCall<T>(op: StoreOp, fn: () => Promise<T>, message?: string): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw storeUnavailable(err, op, message);
  }
}

/** `redis://user:secret@host` → `redis://***@host`: a driver's message may carry the store URL. */
const withoutUserInfo = (s: string) => s.replace(/(\/\/)[^/@\s]*@/g, '$1***@');

/** What the log keeps of a cause: its kind, code and message, never its fields (a driver may attach queries or values). */
export function describeCause(cause: unknown): { type: string; code?: string; message: string } {
  if (!(cause instanceof Error)) return { type: typeof cause, message: withoutUserInfo(String(cause)).slice(0, 300) };
  const code = (cause as NodeJS.ErrnoException).code;
  return { type: cause.name, ...(typeof code === 'string' ? { code } : {}), message: withoutUserInfo(cause.message).slice(0, 300) };
}

/**
 * Called where an error is answered (proxy, tunnel, upgrade, admin API, connect pages): a
 * store failure is logged with its cause and counted, once per answer. Other errors pass.
 */
export function reportStoreFailure(sink: { log: Logger; metrics: Metrics }, err: unknown): void {
  if (!(err instanceof StoreUnavailableError)) return;
  sink.metrics.storeFailures.inc({ op: err.op });
  sink.log.error({ op: err.op, cause: describeCause(err.cause) }, 'store unavailable: answered 503 store_unavailable');
}
