import type { RedisCommander } from './redis-lock.js';

/** One take from a token bucket: allowed, or how long until a token is there again. */
export interface RateDecision {
  allowed: boolean;
  retryAfterMs: number;
}

/**
 * Token buckets of `perMinute` tokens, refilled continuously (perMinute / 60 000 per ms): a
 * burst of up to a minute's worth, then the steady rate.
 */
export interface RateLimitBackend {
  take(key: string, perMinute: number): Promise<RateDecision>;
}

function refill(tokens: number, elapsedMs: number, perMinute: number): number {
  return Math.min(perMinute, tokens + (elapsedMs * perMinute) / 60_000);
}

/** In-process buckets: one instance, or a store that no other instance shares. */
export class LocalRateLimit implements RateLimitBackend {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(private readonly now: () => number = Date.now) {}

  async take(key: string, perMinute: number): Promise<RateDecision> {
    const now = this.now();
    const b = this.buckets.get(key) ?? { tokens: perMinute, at: now };
    b.tokens = refill(b.tokens, now - b.at, perMinute);
    b.at = now;
    this.buckets.set(key, b);
    // Full buckets carry no information: dropping them keeps the map to active keys.
    if (this.buckets.size > 100_000) for (const [k, v] of this.buckets) if (v.tokens >= perMinute) this.buckets.delete(k);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { allowed: true, retryAfterMs: 0 };
    }
    return { allowed: false, retryAfterMs: Math.ceil(((1 - b.tokens) * 60_000) / perMinute) };
  }
}

// The same bucket in Redis, atomically, on Redis's clock (instances' clocks may disagree).
const TAKE = `
local cap = tonumber(ARGV[1])
local rate = cap / 60000
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1]) or cap
local at = tonumber(b[2]) or now
tokens = math.min(cap, tokens + math.max(0, now - at) * rate)
local allowed = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait = math.ceil((1 - tokens) / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], 61000)
return {allowed, wait}
`;

/** Buckets every instance on one Redis shares: a Lua script per take (EVAL, one round trip). */
export class RedisRateLimit implements RateLimitBackend {
  constructor(private readonly redis: RedisCommander, private readonly prefix: string) {}

  async take(key: string, perMinute: number): Promise<RateDecision> {
    const [allowed, wait] = await this.redis.sendCommand<[number, number]>(['EVAL', TAKE, '1', `${this.prefix}:rate:${key}`, String(perMinute)]);
    return { allowed: Number(allowed) === 1, retryAfterMs: Number(wait) };
  }
}
