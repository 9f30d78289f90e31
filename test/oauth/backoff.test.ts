import t from 'tap';
import { Backoff } from '../../src/oauth/backoff.js';

t.test('each failure doubles the wait from the base, capped at the maximum', async (t) => {
  const b = new Backoff(1000, 5000);
  const now = 1_000_000;
  t.equal(b.waitFor('k', now), 0, 'no failure: go ahead');
  const waits: number[] = [];
  for (let i = 0; i < 5; i++) {
    b.failed('k', now);
    waits.push(b.waitFor('k', now));
  }
  t.same(waits, [1000, 2000, 4000, 5000, 5000]);
});

t.test('the wait counts down with the clock and never goes negative', async (t) => {
  const b = new Backoff(1000, 60_000);
  b.failed('k', 0);
  t.equal(b.waitFor('k', 400), 600);
  t.equal(b.waitFor('k', 5000), 0);
});

t.test('keys are independent, and a success forgets the streak', async (t) => {
  const b = new Backoff(100, 10_000);
  b.failed('a', 0);
  b.failed('a', 0);
  t.equal(b.waitFor('b', 0), 0, 'another key is not slowed');
  b.succeeded('a');
  t.equal(b.waitFor('a', 0), 0);
  b.failed('a', 0);
  t.equal(b.waitFor('a', 0), 100, 'a new streak starts from the base again');
});

t.test('defaults: 1 s, up to a minute', async (t) => {
  const b = new Backoff();
  for (let i = 0; i < 10; i++) b.failed('k', 0);
  t.equal(b.waitFor('k', 0), 60_000);
  b.succeeded('k');
  b.failed('k', 0);
  t.equal(b.waitFor('k', 0), 1000);
});
