import { execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { AUDIT_BATCH_CHARS, AUDIT_FLUSH_MS, AuditLog, type AuditEntry } from '../../src/audit/audit-log.js';
import { pollUntil } from '../support/poll.js';

const entry = (i: number, over: Partial<AuditEntry> = {}): AuditEntry => ({
  time: new Date(1_700_000_000_000 + i * 1000).toISOString(),
  entity: i % 2 ? 'alice' : 'bob',
  integration: 'svc',
  method: 'GET',
  host: 'api.test',
  path: `/r/${i}`,
  status: 200,
  label: null,
  bytes_in: 0,
  bytes_out: 10,
  ms: 1,
  refreshed: false,
  replayed: false,
  client: null,
  ...over,
});

t.test('two writers on one file (--workers): rotation follows the real size, not the count of each writer', async (t) => {
  const file = join(mkdtempSync(join(tmpdir(), 'audit-')), 'audit.log');
  const max = 20_000;
  const a = new AuditLog({ file, max_bytes: max, keep: 5 });
  const b = new AuditLog({ file, max_bytes: max, keep: 5 });
  for (let i = 0; i < 400; i++) (i % 2 ? a : b).record(entry(i));
  await Promise.all([a.flush(), b.flush()]);
  const sizes = [file, `${file}.1`, `${file}.2`].map((f) => (existsSync(f) ? readFileSync(f).length : 0));
  t.ok(sizes[1]! > 0 && sizes[2]! > 0, 'rotated');
  for (const s of sizes) t.ok(s <= max * 1.25, `a file of ${s} bytes: at most a few lines past max_bytes (each writer counting only its own lines would reach twice)`);
  const all = (await a.query({ limit: 1000 })).map((e) => Number(e.path.slice(3)));
  t.same(all, [...all].sort((x, y) => x - y), 'in order across files');
  t.equal(all.at(-1), 399);
});

t.test('rotation by size keeps `keep` old files; queries read them oldest first', async (t) => {
  const file = join(mkdtempSync(join(tmpdir(), 'audit-')), 'sub', 'audit.log');
  const log = new AuditLog({ file, max_bytes: 1024, keep: 2 });
  for (let i = 0; i < 40; i++) log.record(entry(i));
  await log.flush();
  t.ok(existsSync(`${file}.1`) && existsSync(`${file}.2`), 'rotated twice at least');
  t.notOk(existsSync(`${file}.3`), 'no more than keep old files');
  const lines = readFileSync(file, 'utf8').trim().split('\n');
  t.ok(lines.every((l) => JSON.parse(l).integration === 'svc'));
  const all = await log.query({ limit: 1000 });
  t.equal(all.at(-1)!.path, '/r/39', 'the newest last');
  t.ok(all.length < 40, 'the oldest rotated out');
  const paths = all.map((e) => Number(e.path.slice(3)));
  t.same(paths, [...paths].sort((a, b) => a - b), 'in order across files');
  t.same((await log.query({ entity: 'alice', limit: 2 })).map((e) => e.path), ['/r/37', '/r/39']);
  t.same((await log.query({ since: Date.parse(entry(38).time), limit: 10 })).map((e) => e.path), ['/r/38', '/r/39']);
  t.same(await log.query({ integration: 'other', limit: 10 }), []);
  appendFileSync(file, '{"torn');
  t.equal((await log.query({ limit: 1000 })).at(-1)!.path, '/r/39', 'a torn line is skipped');
});

t.test('without a file: a ring in memory', async (t) => {
  const log = new AuditLog({ max_bytes: 1024, keep: 1 });
  t.equal(log.file, undefined);
  for (let i = 0; i < 10_005; i++) log.record(entry(i));
  const all = await log.query({ limit: 100_000 });
  t.equal(all.length, 10_000);
  t.equal(all[0]!.path, '/r/5');
});

t.test('lines are appended in batches: after AUDIT_FLUSH_MS, before a query, and at exit', async (t) => {
  const file = join(mkdtempSync(join(tmpdir(), 'audit-')), 'audit.log');
  const log = new AuditLog({ file, max_bytes: 10_000_000, keep: 1 });
  log.record(entry(1));
  log.record(entry(2));
  t.notOk(existsSync(file), 'not one write per request');
  t.ok(await pollUntil(() => existsSync(file) && readFileSync(file, 'utf8').trim().split('\n').length === 2, AUDIT_FLUSH_MS + 2_000), 'written by the timer');
  log.record(entry(3));
  t.equal((await log.query({ limit: 10 })).at(-1)!.path, '/r/3', 'a query sees the lines still pending');

  // A process that exits right after recording still writes them (the exit hook).
  const script = `
    import { AuditLog } from ${JSON.stringify(new URL('../../src/audit/audit-log.ts', import.meta.url).href)};
    const log = new AuditLog({ file: process.argv[1], max_bytes: 10_000_000, keep: 1 });
    for (let i = 0; i < 3; i++) log.record({ time: new Date().toISOString(), entity: 'e', integration: 'svc', label: null, method: 'GET', host: 'h', path: '/x' + i, status: 200, bytes_in: 0, bytes_out: 0, ms: 1, refreshed: false, replayed: false, client: null });
    process.exit(0);
  `;
  const exiting = join(mkdtempSync(join(tmpdir(), 'audit-')), 'audit.log');
  execFileSync(process.execPath, [...process.execArgv, '--input-type=module', '-e', script, exiting]);
  t.same(readFileSync(exiting, 'utf8').trim().split('\n').map((l) => JSON.parse(l).path), ['/x0', '/x1', '/x2']);
});

t.test('writes leave the event loop free and keep the order recorded, across batches and a rotation', async (t) => {
  const file = join(mkdtempSync(join(tmpdir(), 'audit-')), 'audit.log');
  const log = new AuditLog({ file, max_bytes: 600_000, keep: 3 });
  const n = 4_000; // about 1 MB of lines: many batches in flight at once, and rotation
  for (let i = 0; i < n; i++) log.record(entry(i));
  t.ok(n * 200 > AUDIT_BATCH_CHARS * 4, 'several full batches were handed over');
  t.notOk(existsSync(file), 'nothing written while record() ran: the appends are asynchronous');
  await log.flush();
  t.ok(existsSync(`${file}.1`), 'rotated');
  const lines = [`${file}.2`, `${file}.1`, file]
    .filter((f) => existsSync(f))
    .flatMap((f) => readFileSync(f, 'utf8').trim().split('\n'))
    .map((l) => Number((JSON.parse(l) as AuditEntry).path.slice(3)));
  t.same(lines, Array.from({ length: n }, (_, i) => i), 'every line once, in the order recorded, oldest file first');
});

t.test('a query over rotated files: the latest matches from the tail, oldest first', async (t) => {
  const file = join(mkdtempSync(join(tmpdir(), 'audit-')), 'audit.log');
  const log = new AuditLog({ file, max_bytes: 4_096, keep: 4 });
  for (let i = 0; i < 60; i++) log.record(entry(i, { integration: i % 10 === 0 ? 'rare' : 'svc' }));
  await log.flush();
  t.ok(existsSync(`${file}.3`), 'several rotated files');
  const rare = (await log.query({ integration: 'rare', limit: 3 })).map((e) => e.path);
  t.same(rare, ['/r/30', '/r/40', '/r/50'], 'matches found back across the rotated files');
  const latest = (await log.query({ limit: 5 })).map((e) => e.path);
  t.same(latest, ['/r/55', '/r/56', '/r/57', '/r/58', '/r/59']);
  t.same((await log.query({ since: Date.parse(entry(58).time), limit: 100 })).map((e) => e.path), ['/r/58', '/r/59'], 'since stops the reading early');
});

t.test('a reload-style replacement: the new writer waits for the old one, so the file keeps the order', async (t) => {
  const file = join(mkdtempSync(join(tmpdir(), 'audit-')), 'audit.log');
  const old = new AuditLog({ file, max_bytes: 10_000_000, keep: 1 });
  for (let i = 0; i < 500; i++) old.record(entry(i));
  const next = new AuditLog({ file, max_bytes: 10_000_000, keep: 1 }, { after: old.close() });
  for (let i = 500; i < 1000; i++) next.record(entry(i));
  await next.close();
  const paths = readFileSync(file, 'utf8').trim().split('\n').map((l) => Number((JSON.parse(l) as AuditEntry).path.slice(3)));
  t.same(paths, Array.from({ length: 1000 }, (_, i) => i));
});

t.test('a log that is off (audit.enabled: false) keeps nothing, writes no file, and refuses a query', async (t) => {
  const file = join(mkdtempSync(join(tmpdir(), 'audit-off-')), 'audit.log');
  const log = new AuditLog({ enabled: false, file, max_bytes: 1 << 20, keep: 2 });
  t.equal(log.enabled, false);
  t.equal(log.file, undefined, 'no file, whatever audit.file says');
  log.record(entry(1));
  log.recordAt(Date.now(), entry(2));
  await log.flush();
  log.flushSync();
  await log.close();
  t.notOk(existsSync(file), 'nothing written');
  await t.rejects(log.query({ limit: 10 }), { code: 'not_found', status: 404, message: /audit log is turned off \(audit\.enabled: false in credproxy\.yaml\)/ }, 'not an empty list');
  const ring = new AuditLog({ enabled: false, max_bytes: 1 << 20, keep: 2 });
  ring.record(entry(3));
  await t.rejects(ring.query({ limit: 10 }), { code: 'not_found' }, 'without a file too');
  t.equal(new AuditLog({ max_bytes: 1 << 20, keep: 2 }).enabled, true, 'on unless told otherwise');
});
