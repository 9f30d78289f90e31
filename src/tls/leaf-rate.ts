/**
 * `limits.new_leaves_per_second`: how many leaf certificates one client may cause to be
 * signed per second. A token bucket per client (its client name, entity token or address)
 * holding at most one second's worth, so a burst of new names is bounded too. Tunnels to
 * names that already have a certificate take nothing: only new names cost a signature.
 */
export class NewLeafLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(private readonly perSecond: () => number) {}

  /** false when `client` is over the rate; the caller then answers 429 before any handshake. */
  take(client: string, now = Date.now()): boolean {
    const rate = this.perSecond();
    const b = this.buckets.get(client);
    const tokens = b === undefined ? rate : Math.min(rate, b.tokens + ((now - b.at) / 1000) * rate);
    const allowed = tokens >= 1;
    // Re-inserted on every use, so that the map's order is last-use order (see sweep).
    this.buckets.delete(client);
    this.buckets.set(client, { tokens: allowed ? tokens - 1 : tokens, at: now });
    this.sweep(now);
    return allowed;
  }

  /** Forgets clients whose bucket has been full again for a while; the map stays as small as the clients active in the last seconds. */
  private sweep(now: number): void {
    if (this.buckets.size <= 1000) return;
    for (const [client, b] of this.buckets) {
      if (now - b.at < 2000) break; // insertion order is last-use order
      this.buckets.delete(client);
    }
  }
}
