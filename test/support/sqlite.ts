import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A `store:` line for the default store, SQLite, in a temp folder removed when the test
 * ends: for tests whose point is what a deployment stores (labels, refreshed and rotated
 * tokens), which the memory store would only stand in for.
 */
export function sqliteStore(t: { teardown(fn: () => unknown): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'credproxy-sqlite-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return `store: sqlite:${join(dir, 'credproxy.db')}\n`;
}
