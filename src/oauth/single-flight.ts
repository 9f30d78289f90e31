/**
 * Runs `fn` at most once at a time per key: whoever asks while a run is under way waits for
 * that run and gets its result. This is the in-process layer of refresh locking: behind it,
 * the one caller per instance takes the store's lock (refresh.ts, store/locked-update.ts),
 * so an instance makes one lock attempt per connection, not one per waiting request.
 */
export class SingleFlight {
  private readonly inflight = new Map<string, Promise<unknown>>();

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const running = this.inflight.get(key);
    if (running) return running as Promise<T>;
    const p = fn().finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }
}
