import type pg from 'pg';
import type { RateDecision, RateLimitBackend } from './rate-limit.js';

// The bucket of rate-limit.ts as one UPSERT on the database's clock: refill since `at`,
// take a token when there is one, remember whether this take was allowed.
const TAKE = `
WITH c AS (SELECT $2::float8 AS cap, clock_timestamp() AS now)
INSERT INTO credproxy_rate AS r (key, tokens, allowed, at)
SELECT $1, c.cap - 1, true, c.now FROM c
ON CONFLICT (key) DO UPDATE SET
  tokens = (SELECT CASE WHEN x >= 1 THEN x - 1 ELSE x END FROM (SELECT LEAST(c.cap, r.tokens + GREATEST(0, extract(epoch FROM c.now - r.at) * 1000) * c.cap / 60000) AS x FROM c) s),
  allowed = (SELECT LEAST(c.cap, r.tokens + GREATEST(0, extract(epoch FROM c.now - r.at) * 1000) * c.cap / 60000) >= 1 FROM c),
  at = (SELECT now FROM c)
RETURNING allowed, tokens`;

/** Rate-cap buckets every instance on one PostgreSQL shares: one statement (one round trip) per take. */
export class PostgresRateLimit implements RateLimitBackend {
  constructor(private readonly pool: pg.Pool, private readonly prefix: string) {}

  async take(key: string, perMinute: number): Promise<RateDecision> {
    const { rows } = await this.pool.query<{ allowed: boolean; tokens: number }>(TAKE, [`${this.prefix}:${key}`, perMinute]);
    const row = rows[0];
    if (!row) throw new Error('rate bucket: no row returned');
    if (row.allowed) return { allowed: true, retryAfterMs: 0 };
    return { allowed: false, retryAfterMs: Math.ceil(((1 - row.tokens) * 60_000) / perMinute) };
  }
}
