import t from 'tap';
import { TokenCache } from '../../src/auth/token-cache.js';

t.test('entries are reused until their time, then minted anew; failures are not cached', async (t) => {
  let now = 1000;
  let minted = 0;
  const cache = new TokenCache<string>(() => now);
  const mint = (until: number) => () => ({ value: `v${++minted}`, until });
  t.equal(await cache.get('a', mint(2000)), 'v1');
  t.equal(await cache.get('a', mint(2000)), 'v1');
  now = 2000;
  t.equal(await cache.get('a', mint(3000)), 'v2', 'stale at its time');
  await t.rejects(cache.get('b', () => Promise.reject(new Error('token endpoint down'))), /down/);
  t.equal(await cache.get('b', mint(3000)), 'v3', 'the failure was not remembered');
  t.equal(await cache.get('c', mint(1500)), 'v4', 'already stale: handed out once, not stored');
  t.equal(cache.size, 2);
  cache.delete('a');
  t.equal(await cache.get('a', mint(3000)), 'v5');
});

t.test('concurrent gets of one key share one mint', async (t) => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let minted = 0;
  const cache = new TokenCache<string>(() => 0);
  const mint = async () => {
    minted++;
    await gate;
    return { value: 'shared', until: 10 };
  };
  const all = Promise.all([cache.get('k', mint), cache.get('k', mint), cache.get('k', mint)]);
  release();
  t.same(await all, ['shared', 'shared', 'shared']);
  t.equal(minted, 1);
});

t.test('bounded: stale entries go first, then the oldest', async (t) => {
  let now = 0;
  const cache = new TokenCache<string>(() => now, 3);
  await cache.get('stale', () => ({ value: 's', until: 5 }));
  await cache.get('old', () => ({ value: 'o', until: 100 }));
  await cache.get('mid', () => ({ value: 'm', until: 100 }));
  now = 10;
  await cache.get('new', () => ({ value: 'n', until: 100 }));
  t.equal(cache.size, 3, 'the stale entry made room');
  await cache.get('newer', () => ({ value: 'x', until: 100 }));
  t.equal(cache.size, 3);
  let reminted = false;
  t.equal(await cache.get('old', () => ((reminted = true), { value: 'o2', until: 100 })), 'o2');
  t.ok(reminted, 'the oldest entry was evicted');
});
