import { randomBytes } from 'node:crypto';

/**
 * Named, expiring locks: one refresh at a time per connection, across every instance that
 * shares the store. Redis implements them with SET NX PX (redis-lock.ts); the embedded and
 * memory stores, which only one process uses, with a map (LocalLocks). Callers use
 * `withLock` and never care which.
 */
export interface LockHandle {
  readonly name: string;
  /** the random value that proves ownership; a lock is released only by its owner */
  readonly token: string;
  /**
   * Fencing number (PostgreSQL): grows with every take of the lock, so a write made under a
   * lock that was lost meanwhile can be refused by the store (ConnectionStore.put's `lock`).
   */
  readonly fence?: string;
  /** releases the lock if this handle still owns it; false when it had expired (or was taken over) */
  release(): Promise<boolean>;
  /** whether this handle still owns the lock (it expires after its ttl even if the holder still runs) */
  held(): Promise<boolean>;
}

export interface LockBackend {
  /** one attempt: a handle when taken, undefined when someone else holds it */
  tryAcquire(name: string, ttlMs: number): Promise<LockHandle | undefined>;
}

export interface LockOptions {
  /**
   * How long the lock lives if its holder never releases it (crashed instance). Must be
   * longer than anything done under it, e.g. the token endpoint timeout plus a store write.
   */
  ttlMs?: number;
  /** how long to wait for the lock before giving up with LockTimeoutError */
  waitMs?: number;
}

/** 30 s: longer than a token endpoint call (bounded by its own timeout, well under that) and a write. */
export const DEFAULT_LOCK_TTL_MS = 30_000;

export class LockTimeoutError extends Error {
  constructor(readonly lockName: string, waitedMs: number) {
    super(`lock "${lockName}" still held by another holder after ${waitedMs} ms`);
    this.name = 'LockTimeoutError';
  }
}

export function lockToken(): string {
  return randomBytes(16).toString('base64url');
}

/**
 * Waiting for and holding locks over any backend. Waiters in this process are woken as soon
 * as a holder in this process releases; a release by another instance is noticed by polling
 * (a few tens of milliseconds, small next to a token endpoint round trip).
 */
export class Locks {
  private readonly wakers = new Map<string, Set<() => void>>();

  constructor(private readonly backend: LockBackend, private readonly pollMs = 40) {}

  /** Takes the lock, waiting up to `waitMs` (default: the ttl, so a dead holder is outlived). */
  async acquire(name: string, opts: LockOptions = {}): Promise<LockHandle> {
    const ttlMs = opts.ttlMs ?? DEFAULT_LOCK_TTL_MS;
    const waitMs = opts.waitMs ?? ttlMs + 1_000;
    const deadline = Date.now() + waitMs;
    for (;;) {
      const at = Date.now();
      const handle = await this.backend.tryAcquire(name, ttlMs);
      if (handle) return this.wrap(handle, at + ttlMs);
      const left = deadline - Date.now();
      if (left <= 0) throw new LockTimeoutError(name, waitMs);
      // Jitter keeps waiters on several instances from polling in lockstep.
      await this.waitForRelease(name, Math.min(left, this.pollMs / 2 + Math.random() * this.pollMs));
    }
  }

  /** Runs `fn` while holding the lock; always releases, also when `fn` throws. */
  async withLock<T>(name: string, fn: (lock: LockHandle) => Promise<T>, opts: LockOptions = {}): Promise<T> {
    const lock = await this.acquire(name, opts);
    try {
      return await fn(lock);
    } finally {
      // A failed release (store gone) leaves the lock to expire on its own: nothing to do.
      await lock.release().catch(() => false);
    }
  }

  private wrap(handle: LockHandle, until: number): LockHandle {
    return {
      name: handle.name,
      token: handle.token,
      fence: handle.fence,
      held: () => handle.held(),
      release: async () => {
        try {
          return await handle.release();
        } catch (err) {
          // The store is unreachable: keep trying in the background, or everyone waits out
          // the whole ttl once it is back.
          this.releaseLater(handle, until);
          throw err;
        } finally {
          this.wake(handle.name);
        }
      },
    };
  }

  private releaseLater(handle: LockHandle, until: number): void {
    const retry = () => {
      if (Date.now() >= until) return;
      handle.release().then(
        () => this.wake(handle.name),
        () => setTimeout(retry, this.pollMs * 5).unref(),
      );
    };
    setTimeout(retry, this.pollMs * 5).unref();
  }

  private waitForRelease(name: string, ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      let set = this.wakers.get(name);
      if (!set) this.wakers.set(name, (set = new Set()));
      const timer = setTimeout(done, ms);
      const wakers = set;
      function done() {
        clearTimeout(timer);
        wakers.delete(done);
        resolve();
      }
      wakers.add(done);
    }).finally(() => {
      if (this.wakers.get(name)?.size === 0) this.wakers.delete(name);
    });
  }

  private wake(name: string): void {
    for (const w of [...(this.wakers.get(name) ?? [])]) w();
  }
}

/** In-process locks for stores that only one process uses (embedded SQLite, memory). */
export class LocalLockBackend implements LockBackend {
  private readonly held = new Map<string, { token: string; until: number }>();

  async tryAcquire(name: string, ttlMs: number): Promise<LockHandle | undefined> {
    const now = Date.now();
    const cur = this.held.get(name);
    if (cur && cur.until > now) return undefined;
    const token = lockToken();
    this.held.set(name, { token, until: now + ttlMs });
    const owns = () => {
      const c = this.held.get(name);
      return c !== undefined && c.token === token && c.until > Date.now();
    };
    return {
      name,
      token,
      held: async () => owns(),
      release: async () => {
        const mine = owns();
        if (this.held.get(name)?.token === token) this.held.delete(name);
        return mine;
      },
    };
  }
}
