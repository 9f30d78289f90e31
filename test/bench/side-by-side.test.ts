import { fileURLToPath } from 'node:url';
import t from 'tap';
import { parseAbOptions, runSideBySide } from '../../bench/side-by-side.js';
import { wrkVersion } from '../../bench/wrk.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const dist = `${root}dist`;

t.test('options: --base required, defaults, bad values refused', async (t) => {
  t.throws(() => parseAbOptions([]), /--base: the other build’s dist folder is required/);
  t.match(parseAbOptions(['--base', 'x/dist']), { kase: 'injection', pairs: 16, seconds: 1.5, connections: 32 });
  t.ok(parseAbOptions(['--base', 'x/dist']).base.endsWith('/x/dist'), 'made absolute');
  t.match(parseAbOptions(['--base', 'd', '--case', 'passthrough', '--pairs', '4', '--seconds', '0.5']), { kase: 'passthrough', pairs: 4, seconds: 0.5 });
  t.match(parseAbOptions(['--base', 'd', '--driver', 'autocannon']), { driver: 'autocannon' });
  t.throws(() => parseAbOptions(['--base', 'd', '--driver', 'ab']), /--driver: "ab" is not wrk or autocannon/);
  t.throws(() => parseAbOptions(['--base', 'd', '--case', 'oauth']), /--case: "oauth" is not injection or passthrough/);
  t.throws(() => parseAbOptions(['--base', 'd', '--pairs', '1.5']), /--pairs: "1.5" is not a positive integer/);
  t.throws(() => parseAbOptions(['--base', 'd', '--seconds', '0']), /--seconds: "0" is not a positive number/);
});

t.test('a build against itself: every pair measured, every answer 200, both CPU figures real', async (t) => {
  // npm test builds dist first; the same build on both sides.
  const r = await runSideBySide({ base: dist, kase: 'injection', pairs: 2, seconds: 0.3, connections: 4, driver: 'autocannon' }, dist);
  t.same(r.problems, [], 'no errors, no non-2xx answers');
  t.equal(r.diffs.length, 2);
  for (const x of [...r.base, ...r.current]) t.ok(Number.isFinite(x) && x > 0, `CPU per request measured (${x.toFixed(1)} µs)`);
  t.ok(Number.isFinite(r.medianDiff));
});

t.test('driven by wrk: the same, in whole-second spells', { skip: wrkVersion() ? false : 'wrk is not installed (.ci/run installs it)' }, async (t) => {
  const r = await runSideBySide({ base: dist, kase: 'passthrough', pairs: 1, seconds: 1, connections: 4, driver: 'wrk' }, dist);
  t.same(r.problems, [], 'no errors, no non-2xx answers');
  for (const x of [...r.base, ...r.current]) t.ok(Number.isFinite(x) && x > 0, `CPU per request measured (${x.toFixed(1)} µs)`);
});
