import t from 'tap';
import { NewLeafLimiter } from '../../src/tls/leaf-rate.js';

// The limiter against a real proxy is in test/tls/new-leaves.test.ts; this is its arithmetic.
t.test('a bucket of one second per client, refilled at the rate', async (t) => {
  const l = new NewLeafLimiter(() => 2);
  t.same([l.take('a', 0), l.take('a', 0), l.take('a', 0)], [true, true, false]);
  t.ok(l.take('b', 0), 'another client has its own bucket');
  t.notOk(l.take('a', 400), '0.8 of a token is not one');
  t.ok(l.take('a', 500), 'half a second at 2/s refills one');
  t.notOk(l.take('a', 500));
  t.same([l.take('a', 60_000), l.take('a', 60_000), l.take('a', 60_000)], [true, true, false], 'a long idle time refills one second, not more');
});

t.test('the rate is read at each take, so a reload applies at once', async (t) => {
  let rate = 1;
  const l = new NewLeafLimiter(() => rate);
  t.ok(l.take('a', 0));
  t.notOk(l.take('a', 0));
  rate = 0;
  t.notOk(l.take('a', 10_000), 'zero: no new names at all');
  rate = 5;
  t.ok(l.take('c', 0));
});

t.test('over a thousand clients, those idle for two seconds are forgotten (they come back with a full bucket)', async (t) => {
  const l = new NewLeafLimiter(() => 1);
  l.take('old', 0);
  for (let i = 0; i < 1001; i++) l.take(`c${i}`, 5_000);
  t.ok(l.take('old', 5_000), 'forgotten, so a full bucket again');
  const recent = new NewLeafLimiter(() => 1);
  recent.take('x', 0);
  for (let i = 0; i < 1001; i++) recent.take(`c${i}`, 100);
  t.notOk(recent.take('x', 100), 'a client seen within two seconds keeps its empty bucket');
});
