import t from 'tap';
import { SingleFlight } from '../../src/oauth/single-flight.js';

/** A run the test ends when it likes. */
function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

t.test('callers during a run share it: fn runs once, everyone gets its result', async (t) => {
  const sf = new SingleFlight();
  const d = deferred<string>();
  let calls = 0;
  const fn = () => {
    calls++;
    return d.promise;
  };
  const all = [sf.run('k', fn), sf.run('k', fn), sf.run('k', fn)];
  d.resolve('v');
  t.same(await Promise.all(all), ['v', 'v', 'v']);
  t.equal(calls, 1);
});

t.test('after a run ends the next call runs again; keys do not share', async (t) => {
  const sf = new SingleFlight();
  let calls = 0;
  const fn = async () => ++calls;
  t.equal(await sf.run('k', fn), 1);
  t.equal(await sf.run('k', fn), 2, 'a finished run is not a cache');
  const [a, b] = await Promise.all([sf.run('x', fn), sf.run('y', fn)]);
  t.not(a, b, 'two keys, two runs');
});

t.test('a failing run fails every waiter, and is forgotten', async (t) => {
  const sf = new SingleFlight();
  const d = deferred<string>();
  const a = sf.run('k', () => d.promise);
  const b = sf.run('k', () => Promise.resolve('never'));
  d.reject(new Error('boom'));
  await t.rejects(a, /boom/);
  await t.rejects(b, /boom/);
  t.equal(await sf.run('k', async () => 'again'), 'again');
});

t.test('running(key) gives the note of the run under way, and nothing once it is over', async (t) => {
  const sf = new SingleFlight<{ token: string }>();
  const d = deferred<void>();
  t.equal(sf.running('k'), undefined);
  const p = sf.run('k', () => d.promise, { token: 'old' });
  t.same(sf.running('k'), { token: 'old' });
  t.equal(sf.running('other'), undefined);
  d.resolve();
  await p;
  t.equal(sf.running('k'), undefined);
});
