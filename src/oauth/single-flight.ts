/**
 * Runs `fn` at most once at a time per key: whoever asks while a run is under way waits for
 * that run and gets its result. This is the in-process layer of refresh locking; a store
 * shared by several instances (issue 6, Redis) adds a cross-instance lock implementing the
 * same interface behind it (refresh.ts, useSharedRefreshLock).
 */
export interface RefreshLock {
  run<T>(key: string, fn: () => Promise<T>): Promise<T>;
}

export class SingleFlight implements RefreshLock {
  private readonly inflight = new Map<string, Promise<unknown>>();

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const running = this.inflight.get(key);
    if (running) return running as Promise<T>;
    const p = fn().finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }
}
