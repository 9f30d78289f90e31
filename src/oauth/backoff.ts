/**
 * After a transient token endpoint failure, further attempts for the same key wait 1 s,
 * 2 s, 4 s … up to a minute, so a provider in trouble is not hammered by every request.
 */
export class Backoff {
  private readonly failures = new Map<string, { count: number; until: number }>();

  constructor(
    private readonly baseMs = 1000,
    private readonly maxMs = 60_000,
  ) {}

  /** ms left to wait before the next attempt for `key` (0: go ahead) */
  waitFor(key: string, now = Date.now()): number {
    const f = this.failures.get(key);
    return f ? Math.max(0, f.until - now) : 0;
  }

  failed(key: string, now = Date.now()): void {
    const count = (this.failures.get(key)?.count ?? 0) + 1;
    this.failures.set(key, { count, until: now + Math.min(this.maxMs, this.baseMs * 2 ** (count - 1)) });
  }

  succeeded(key: string): void {
    this.failures.delete(key);
  }
}
