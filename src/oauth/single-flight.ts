/**
 * Runs `fn` at most once at a time per key: whoever asks while a run is under way waits for
 * that run and gets its result. This is the in-process layer of refresh locking: behind it,
 * the one caller per instance takes the store's lock (refresh.ts, store/locked-update.ts),
 * so an instance makes one lock attempt per connection, not one per waiting request.
 *
 * A run may carry a note (`M`): what it is doing, so that a caller can decide whether to
 * wait for it before it does anything else (a refresh notes the token it replaces).
 */
export class SingleFlight<M = undefined> {
  private readonly inflight = new Map<string, { promise: Promise<unknown>; note: M | undefined }>();

  run<T>(key: string, fn: () => Promise<T>, note?: M): Promise<T> {
    const running = this.inflight.get(key);
    if (running) return running.promise as Promise<T>;
    const entry: { promise: Promise<unknown>; note: M | undefined } = { promise: Promise.resolve(), note };
    const p = fn().finally(() => {
      if (this.inflight.get(key) === entry) this.inflight.delete(key);
    });
    entry.promise = p;
    this.inflight.set(key, entry);
    return p;
  }

  /** The note of the run under way for `key`, if any. */
  running(key: string): M | undefined {
    return this.inflight.get(key)?.note;
  }
}
