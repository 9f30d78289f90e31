import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

type TapTest = { teardown(fn: () => unknown): void };

/** A `sqlite:` store URL in a temp folder removed when the test ends. */
export function sqliteUrl(t: TapTest): string {
  const dir = mkdtempSync(join(tmpdir(), 'credproxy-sqlite-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return `sqlite:${join(dir, 'credproxy.db')}`;
}

/**
 * A `store:` line for the default store, SQLite, in a temp folder: for tests whose point is
 * what a deployment stores (labels, refreshed and rotated tokens), which the memory store
 * would only stand in for.
 */
export function sqliteStore(t: TapTest): string {
  return `store: ${sqliteUrl(t)}\n`;
}
