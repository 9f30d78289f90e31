import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { readOrCreateSecret } from '../../src/store/secret-file.js';

t.test('creates a random secret once, 0600 in a 0700 folder, and reads the same one after', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'credproxy-secret-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const path = join(root, 'data', 'storage.key');
  const first = readOrCreateSecret(path);
  t.equal(first.created, true);
  t.match(first.value, /^[A-Za-z0-9_-]{43}$/, '32 bytes, base64url');
  t.equal(statSync(path).mode & 0o777, 0o600);
  t.equal(statSync(join(root, 'data')).mode & 0o777, 0o700);
  const again = readOrCreateSecret(path);
  t.same(again, { value: first.value, created: false });
  t.not(readOrCreateSecret(join(root, 'other.key')).value, first.value, 'each secret is its own');
  t.equal(readOrCreateSecret(join(root, 'short.key'), 8).value.length, 11, 'the size is the caller’s');
});

t.test('an existing file is read as its owner wrote it (trimmed), never replaced', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'credproxy-secret-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const path = join(root, 'admin.token');
  writeFileSync(path, 'my-own-token\n');
  t.same(readOrCreateSecret(path), { value: 'my-own-token', created: false });
  t.equal(readFileSync(path, 'utf8'), 'my-own-token\n');
});

t.test('an unreadable path is an error, not a new secret', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'credproxy-secret-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  t.throws(() => readOrCreateSecret(root), { code: 'EISDIR' });
});
