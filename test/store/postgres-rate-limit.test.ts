import t from 'tap';
import { PostgresRateLimit } from '../../src/store/postgres-rate-limit.js';
import { migratedPool, query } from '../support/postgres.js';

// Two instances sharing buckets through the store are in test/store/postgres.test.ts; the
// in-process bucket's arithmetic in test/store/rate-limit.test.ts. This is the SQL bucket.
t.test('a minute of tokens, then refusals with the wait for the next token; buckets per key and prefix', async (t) => {
  const { db, pool } = await migratedPool(t, 2);
  const a = new PostgresRateLimit(pool, 'pa');
  const takes = [];
  for (let i = 0; i < 4; i++) takes.push(await a.take('client:k', 3));
  t.same(takes.slice(0, 3).map((d) => d.allowed), [true, true, true]);
  t.equal(takes[3]!.allowed, false);
  t.ok(takes[3]!.retryAfterMs > 0 && takes[3]!.retryAfterMs <= 20_000, 'at most one token interval (20 s at 3 per minute)');
  t.ok((await a.take('client:other', 3)).allowed, 'another key');
  t.ok((await new PostgresRateLimit(pool, 'pb').take('client:k', 3)).allowed, 'another prefix');
  // A minute later, on the database's clock: the bucket is full again, not fuller.
  await query(db, "UPDATE credproxy_rate SET at = at - interval '10 minutes' WHERE key = 'pa:client:k'");
  const later = [];
  for (let i = 0; i < 4; i++) later.push((await a.take('client:k', 3)).allowed);
  t.same(later, [true, true, true, false]);
});
