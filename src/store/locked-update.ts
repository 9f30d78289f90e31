import type { Logger } from 'pino';
import { storeUnavailable } from './failure.js';
import { connKey, LockLostError, StoreClosedError } from './keyv-store.js';
import { LockTimeoutError, type LockHandle, type LockOptions } from './lock.js';
import type { Connection, ConnectionStore } from './types.js';

/**
 * One update of a connection at a time across every instance on the store: the pattern an
 * OAuth refresh needs (DESIGN "Request flow" 4, issue 6 point 2).
 *
 *   take the lock for the connection → re-read it past the cache → if another instance
 *   already did the work, use its result → else do the work (token endpoint) → write.
 *
 * Waiters on other instances block on the lock and then, re-reading, find the new token
 * and return it without calling the provider. Combined with an in-process single-flight
 * (one call per connection per instance), one refresh happens in total.
 */
export interface LockedUpdateWork {
  /** whether the connection as stored now still needs the work; false when another instance did it */
  needed(current: Connection): boolean;
  /** the work itself (e.g. the token endpoint call); returns the connection to store */
  update(current: Connection): Promise<Connection>;
  /**
   * Fencing: whether `stored` (read again just before the write) is still the connection the
   * work started from, so writing the result replaces nothing newer. Default: same
   * updated_at. A refresh compares the refresh token it spent.
   */
  unchanged?(stored: Connection, base: Connection): boolean;
}

const sameUpdate = (stored: Connection, base: Connection) => stored.updated_at === base.updated_at;

export interface LockedUpdateResult {
  /** the connection to use now: the stored one, or the one just made */
  connection: Connection | undefined;
  /** whether this call did the work */
  updated: boolean;
  /** false when the store failed after the work: the result is kept and written later */
  persisted: boolean;
}

/** The connection's store key: one lock per connection, labelled ones included. */
export const lockNameOf = (entity: string, integration: string, label?: string) => connKey(entity, integration, label);

/** A store failure as the pipeline answers it; the work's own errors and LockTimeoutError pass unchanged. */
async function storeStep<T>(step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (err) {
    if (err instanceof LockTimeoutError) throw err;
    throw storeUnavailable(err, 'locked_update', 'the store does not answer; the request was not forwarded');
  }
}

/**
 * Throws: whatever `work.update` throws, unchanged (nothing is stored then); LockTimeoutError
 * when another holder kept the lock past `waitMs`; CredproxyError('store_unavailable') when
 * the store fails before the work (no work is done then: a refresh never starts without the
 * lock). A store failure after the work is not thrown: see `persisted`.
 */
export async function lockedUpdate(
  store: ConnectionStore,
  entity: string,
  integration: string,
  work: LockedUpdateWork,
  opts: LockOptions & { log?: Logger; label?: string; writeBack: WriteBack },
): Promise<LockedUpdateResult> {
  const { label } = opts;
  const name = lockNameOf(entity, integration, label);
  // A result of ours still waiting to be written goes first: re-doing the work from the
  // stale stored copy would spend a refresh token the provider already rotated.
  await storeStep(async () => opts.writeBack.flushOne(name));
  const lock = await storeStep(() => store.locks.acquire(name, opts));
  let keepLock = false;
  try {
    const current = await storeStep(() => store.get(entity, integration, { fresh: true, label }));
    if (!current || !work.needed(current)) return { connection: current, updated: false, persisted: true };
    const next = await work.update(current);
    const unchanged = work.unchanged ?? sameUpdate;
    try {
      // Fencing. Under the lock nobody else refreshes, but the lock may have expired during
      // the work (its ttl exceeds the token endpoint timeout, so only on a stalled process)
      // and the admin API writes without it (a user reconnecting): their write wins.
      const stored = await store.get(entity, integration, { fresh: true, label });
      if (!stored || !unchanged(stored, current)) {
        const held = await lock.held().catch(() => false);
        opts.log?.warn({ entity, integration, label, lockHeld: held }, 'store: the connection changed during the update; the newer stored value is kept');
        return { connection: stored, updated: false, persisted: true };
      }
      await store.put(next, { lock });
      return { connection: next, updated: true, persisted: true };
    } catch (err) {
      if (err instanceof StoreClosedError) throw err;
      if (err instanceof LockLostError) {
        // The lock expired during the work and another instance holds it now: the store
        // refused the write (fencing), so that holder's result is the one kept. This
        // request may still use what the work produced.
        opts.log?.warn({ entity, integration, label }, 'store: the lock expired during the update and was taken by another holder; the result was not stored');
        return { connection: next, updated: true, persisted: false };
      }
      // The provider may already have rotated the refresh token: dropping `next` would
      // lose the only valid one. Keep it, and the lock (until its ttl), and write it once
      // the store answers again; waiters elsewhere then find it when the lock is released.
      opts.writeBack.add(current, next, lock, unchanged);
      keepLock = true;
      return { connection: next, updated: true, persisted: false };
    }
  } finally {
    if (!keepLock) await lock.release().catch(() => false);
  }
}

/**
 * Results that could not be stored, retried until the store answers: one queue per running
 * credproxy (`rt.writeBack`, made with the runtime and closed with it). A pending result is
 * written only if the stored connection is still the one it was made from (the work's
 * `unchanged`, by default the same updated_at): if the user reconnected or deleted it
 * meanwhile, that wins. Lost if the process ends first (logged when added, so an operator
 * can tell).
 */
export class WriteBack {
  private readonly pending = new Map<string, { base: Connection; next: Connection; lock: LockHandle; unchanged: (stored: Connection, base: Connection) => boolean }>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly store: ConnectionStore, private readonly log: Logger | undefined, private readonly retryMs = 250) {}

  /** Stops retrying (the store is closing); what is still pending is lost, and logged. */
  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const { next } of this.pending.values()) {
      this.log?.error({ entity: next.entity, integration: next.integration, label: next.label }, 'store: closed with a connection update still unwritten');
    }
    this.pending.clear();
  }

  add(base: Connection, next: Connection, lock: LockHandle, unchanged: (stored: Connection, base: Connection) => boolean): void {
    this.log?.error({ entity: next.entity, integration: next.integration, label: next.label }, 'store: could not write an updated connection; kept in memory and retried until the store answers');
    this.pending.set(lockNameOf(next.entity, next.integration, next.label), { base, next, lock, unchanged });
    this.schedule();
  }

  private schedule(): void {
    if (this.timer || this.pending.size === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush().finally(() => this.schedule());
    }, this.retryMs);
    this.timer.unref();
  }

  /** Writes the pending result for `k`, if any; throws while the store is unavailable. */
  async flushOne(k: string): Promise<void> {
    const p = this.pending.get(k);
    if (!p) return;
    const { base, next, unchanged } = p;
    const now = await this.store.get(next.entity, next.integration, { fresh: true, label: next.label });
    if (this.pending.get(k) !== p) return; // handled meanwhile by the other path
    if (now && unchanged(now, base)) {
      await this.store.put(next);
      this.log?.info({ entity: next.entity, integration: next.integration }, 'store: pending connection update written');
    } else {
      this.log?.warn({ entity: next.entity, integration: next.integration }, 'store: the connection changed while its update waited to be written; the update is dropped');
    }
    if (this.pending.get(k) === p) this.pending.delete(k);
    await p.lock.release().catch(() => false);
  }

  private async flush(): Promise<void> {
    for (const k of [...this.pending.keys()]) {
      try {
        await this.flushOne(k);
      } catch (err) {
        if (err instanceof StoreClosedError) {
          const next = this.pending.get(k)?.next;
          this.log?.error({ entity: next?.entity, integration: next?.integration }, 'store: closed with a connection update still unwritten');
          this.pending.delete(k);
        }
        // otherwise still unavailable: try again later
      }
    }
  }
}
