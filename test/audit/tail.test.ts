import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { AuditEntry } from '../../src/audit/audit-log.js';
import { linesBackwards, readTail } from '../../src/audit/tail.js';

async function all(gen: AsyncGenerator<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const l of gen) out.push(l);
  return out;
}

t.test('lines from the last to the first, across chunk edges and multi-byte characters', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tail-'));
  const lines = Array.from({ length: 50 }, (_, i) => `line ${i} ${'é€'.repeat(i % 7)}`);
  const file = join(dir, 'a.log');
  writeFileSync(file, `${lines.join('\n')}\n`);
  for (const chunk of [1, 3, 7, 64, 1 << 16]) t.same(await all(linesBackwards(file, chunk)), [...lines].reverse(), `chunks of ${chunk} bytes`);
  writeFileSync(file, 'first\nno newline at the end');
  t.same(await all(linesBackwards(file, 4)), ['no newline at the end', 'first']);
  t.same(await all(linesBackwards(join(dir, 'missing'))), [], 'a missing file has no lines');
});

t.test('readTail stops once enough entries match: the older files are not read', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tail-'));
  const entry = (i: number) => JSON.stringify({ time: new Date(1_700_000_000_000 + i * 60_000).toISOString(), path: `/r/${i}` });
  const file = join(dir, 'audit.log');
  writeFileSync(file, `${[5, 6, 7].map(entry).join('\n')}\n`);
  // A folder where the next rotated file would be: reading it fails, so a query that reached it would reject.
  const unreadable = join(dir, 'audit.log.1');
  mkdirSync(unreadable);
  const q = (limit: number, since?: number) => readTail<AuditEntry>([file, unreadable], { matches: () => true, limit, since });
  t.same((await q(2)).map((e: AuditEntry) => e.path), ['/r/6', '/r/7'], 'the latest two, oldest first');
  t.same((await q(100, Date.parse(JSON.parse(entry(6)).time))).map((e) => e.path), ['/r/6', '/r/7'], 'since: stops at older lines');
  await t.rejects(q(4), 'a larger limit reads on into the next file');
});
