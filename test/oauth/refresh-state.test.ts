import t from 'tap';
import { Backoff } from '../../src/oauth/backoff.js';
import { newRefreshState } from '../../src/oauth/refresh-state.js';
import { SingleFlight } from '../../src/oauth/single-flight.js';

t.test('each runtime gets refresh state of its own, empty', async (t) => {
  const a = newRefreshState();
  const b = newRefreshState();
  t.ok(a.local instanceof SingleFlight);
  t.ok(a.backoff instanceof Backoff);
  t.equal(a.stale.size, 0);
  t.equal(a.failing.size, 0);
  a.stale.add('tok');
  a.failing.add('alice/demo');
  a.backoff.failed('alice/demo', 0);
  t.equal(b.stale.size, 0, 'two instances in one process share nothing');
  t.equal(b.failing.size, 0);
  t.equal(b.backoff.waitFor('alice/demo', 0), 0);
  t.not(a.local, b.local);
});
