/** A value with the time (ms since epoch) after which it must not be used any more. */
export interface Cached<T> {
  value: T;
  /** when to stop handing it out (already minus any safety margin) */
  until: number;
}

/**
 * Minted credentials (signed JWTs, exchanged access tokens) per key, with single-flight:
 * concurrent requests for a missing or stale entry wait for the same mint instead of each
 * signing or calling the token endpoint. A failed mint is not cached, so the next request
 * tries again. Bounded: past `max` entries, stale ones go first, then the oldest.
 */
export class TokenCache<T> {
  private readonly entries = new Map<string, Cached<T>>();
  private readonly pending = new Map<string, Promise<Cached<T>>>();

  constructor(
    private readonly now: () => number = Date.now,
    private readonly max = 10_000,
  ) {}

  async get(key: string, mint: () => Promise<Cached<T>> | Cached<T>): Promise<T> {
    const hit = this.entries.get(key);
    if (hit && hit.until > this.now()) return hit.value;
    let flight = this.pending.get(key);
    if (!flight) {
      flight = (async () => mint())().finally(() => this.pending.delete(key));
      this.pending.set(key, flight);
      const minted = await flight;
      this.store(key, minted);
      return minted.value;
    }
    return (await flight).value;
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }

  private store(key: string, entry: Cached<T>): void {
    if (entry.until <= this.now()) return;
    this.entries.delete(key);
    if (this.entries.size >= this.max) this.evict();
    this.entries.set(key, entry);
  }

  private evict(): void {
    const now = this.now();
    for (const [k, e] of this.entries) if (e.until <= now) this.entries.delete(k);
    // Still full: Map keeps insertion order, so the first entries are the oldest.
    for (const k of this.entries.keys()) {
      if (this.entries.size < this.max) break;
      this.entries.delete(k);
    }
  }
}
