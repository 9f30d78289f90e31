import t from 'tap';
import { LocalRateLimit } from '../../src/store/rate-limit.js';

// Through a running proxy (limits.rate_per_minute, local and Redis) in test/proxy/rate-limit.test.ts;
// this is the bucket's arithmetic on a clock the test moves.
t.test('a minute of tokens as a burst, then the steady rate, with the wait until the next token', async (t) => {
  let now = 0;
  const rl = new LocalRateLimit(() => now);
  const burst = await Promise.all(Array.from({ length: 4 }, () => rl.take('k', 3)));
  t.same(burst.map((d) => d.allowed), [true, true, true, false]);
  t.equal(burst[3]!.retryAfterMs, 20_000, 'one token comes every 20 s at 3 per minute');
  now = 10_000;
  t.same(await rl.take('k', 3), { allowed: false, retryAfterMs: 10_000 }, 'half a token: half the wait left');
  now = 20_000;
  t.same(await rl.take('k', 3), { allowed: true, retryAfterMs: 0 });
  t.equal((await rl.take('k', 3)).allowed, false);
});

t.test('keys have their own buckets, and a long pause refills one minute, not more', async (t) => {
  let now = 0;
  const rl = new LocalRateLimit(() => now);
  t.ok((await rl.take('a', 1)).allowed);
  t.notOk((await rl.take('a', 1)).allowed);
  t.ok((await rl.take('b', 1)).allowed, 'another key');
  now = 3_600_000;
  t.ok((await rl.take('a', 1)).allowed);
  t.notOk((await rl.take('a', 1)).allowed, 'an hour idle is still one minute of tokens');
});
