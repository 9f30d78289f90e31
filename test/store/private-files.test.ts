import { mkdtempSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { makePrivateDir, makePrivateFile, tightenIfExists } from '../../src/store/private-files.js';

const mode = (p: string) => statSync(p).mode & 0o777;

function tmp(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'credproxy-private-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('makePrivateDir: new folders (and parents) are 0700; an existing one is left alone', async (t) => {
  const root = tmp(t);
  makePrivateDir(join(root, 'a', 'b'));
  t.equal(mode(join(root, 'a')), 0o700);
  t.equal(mode(join(root, 'a', 'b')), 0o700);
  chmodSync(join(root, 'a', 'b'), 0o750);
  makePrivateDir(join(root, 'a', 'b'));
  t.equal(mode(join(root, 'a', 'b')), 0o750, "the owner's choice stands");
});

t.test('makePrivateFile: creates an empty 0600 file, keeps content, narrows an open one', async (t) => {
  const root = tmp(t);
  const f = join(root, 'store.db');
  makePrivateFile(f);
  t.equal(mode(f), 0o600);
  t.equal(statSync(f).size, 0);
  writeFileSync(f, 'data');
  chmodSync(f, 0o644);
  makePrivateFile(f);
  t.equal(mode(f), 0o600, 'a file an older version left 0644 is narrowed');
  t.equal(statSync(f).size, 4, 'and not truncated');
});

t.test('tightenIfExists: takes group and other bits off, keeps the owner bits; a missing file is fine', async (t) => {
  const root = tmp(t);
  const f = join(root, 'x');
  writeFileSync(f, '');
  chmodSync(f, 0o755);
  tightenIfExists(f);
  t.equal(mode(f), 0o700);
  chmodSync(f, 0o400);
  tightenIfExists(f);
  t.equal(mode(f), 0o400, 'already private: unchanged');
  t.doesNotThrow(() => tightenIfExists(join(root, 'missing')));
});
