import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

/**
 * Tests mirror src/: src/a/b.ts is tested in test/a/b.test.ts. The files that have no such
 * test yet are listed, each with why, in test/support/untested.json; this test fails when a
 * source file without a mirrored test is not on that list (so the gap cannot grow), and when
 * an entry is no longer needed (so the list shrinks as tests are added).
 */
const root = fileURLToPath(new URL('..', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sources(path);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [relative(root, path)] : [];
  });
}

const mirrorOf = (src: string) => src.replace(/^src\//, 'test/').replace(/\.ts$/, '.test.ts');
const untested = sources(join(root, 'src'))
  .map((f) => f.split('\\').join('/'))
  .filter((f) => !existsSync(join(root, mirrorOf(f))))
  .sort();
const allowed = JSON.parse(readFileSync(join(root, 'test/support/untested.json'), 'utf8')) as Record<string, string>;

t.test('every source file without a mirrored test is on the allow-list, with a reason', async (t) => {
  const missing = untested.filter((f) => !(f in allowed));
  t.same(missing, [], `add a test at ${missing.map(mirrorOf).join(', ') || '…'} (or, if it truly cannot have one, an entry with a reason in test/support/untested.json)`);
  for (const [file, reason] of Object.entries(allowed)) t.ok(typeof reason === 'string' && reason.trim().length >= 10, `${file} has a reason`);
});

t.test('the allow-list only shrinks: entries whose file now has a test, or is gone, are removed', async (t) => {
  const stale = Object.keys(allowed).filter((f) => !untested.includes(f));
  t.same(stale, [], 'remove these from test/support/untested.json');
});
