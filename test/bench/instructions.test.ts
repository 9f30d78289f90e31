import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { startChild } from '../../bench/children.js';
import { callgrindSplit, callgrindTotal, countInstructions, parseInstructionOptions } from '../../bench/instructions.js';
import { wrkVersion } from '../../bench/wrk.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const childJs = `${root}dist/bench/child.js`;

function valgrindVersion(): string | undefined {
  try {
    return execFileSync('valgrind', ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    return undefined;
  }
}

t.test('options: defaults, and bad values refused', async (t) => {
  t.match(parseInstructionOptions([]), { base: undefined, floor: false, kase: 'injection', warmup: 12000, seconds: 10, out: undefined, names: false });
  t.equal(parseInstructionOptions(['--out', 'cg', '--names']).names, true);
  t.throws(() => parseInstructionOptions(['--names']), /--names: needs --out DIR/);
  const o = parseInstructionOptions(['--base', 'x/dist', '--floor', '--case', 'passthrough', '--warmup', '500', '--seconds', '2', '--out', 'cg']);
  t.match(o, { floor: true, kase: 'passthrough', warmup: 500, seconds: 2 });
  t.ok(o.base?.endsWith('/x/dist') && o.out?.endsWith('/cg'), 'paths made absolute');
  t.equal(parseInstructionOptions(['--case', 'injection-oauth']).kase, 'injection-oauth');
  t.throws(() => parseInstructionOptions(['--case', 'oauth']), /--case: "oauth" is not injection, injection-oauth or passthrough/);
  t.throws(() => parseInstructionOptions(['--seconds', '1.5']), /--seconds: "1.5" is not a positive whole number/);
  t.throws(() => parseInstructionOptions(['--warmup', '0']), /--warmup: "0" is not a positive whole number/);
});

t.test('callgrindTotal: the totals line when counting was switched on at run time, else the summary', async (t) => {
  // The head of a real file (callgrind 3.19, --instr-atstart=no, counting switched on and off by callgrind_control).
  const real = 'version: 1\ncreator: callgrind-3.19.0\npositions: line\nevents: Ir\nsummary: 0\n\nfn=(1) main\n5 10\ntotals: 33046135\n';
  t.equal(callgrindTotal(real), 33046135);
  t.equal(callgrindTotal('events: Ir\nsummary: 1234\n'), 1234);
  t.throws(() => callgrindTotal('events: Ir\n'), /no totals or summary line/);
});

t.test('callgrindSplit: own costs only (a call line is the callee\'s), named by compressed ids, split into compile, GC and the rest', async (t) => {
  const text = [
    'events: Ir',
    'fn=(1) v8::internal::compiler::GraphReducer::ReduceTop()',
    '10 100',
    '+2 50',
    'cfn=(2) v8::internal::Scavenger::ScavengePage(v8::internal::MemoryChunk*)',
    'calls=1 0',
    '12 7000',
    'fn=(2)',
    '1 30',
    'fn=(3) Builtins_LoadIC [/usr/bin/node]',
    '* 5',
    '-1 5',
    'fn=(4) 0x000000000d1f0100',
    '4 1000',
    'fn=(1)',
    '3 1',
    'totals: 1191',
  ].join('\n');
  t.same(callgrindSplit(text), { compile: 151, gc: 30, rest: 1010 }, 'the 7000 of the call line is the scavenger\'s inclusive cost, counted where it was spent');
  t.equal(callgrindTotal(text), 151 + 30 + 1010, 'the parts add up to the total');
});

const missing = !valgrindVersion() ? 'valgrind is not installed (.ci/run installs it)' : !wrkVersion() ? 'wrk is not installed (.ci/run installs it)' : false;

t.test('a short count under real callgrind: injected requests, and instructions for each; JS functions named', { skip: missing }, async (t) => {
  // npm test builds dist first.
  const upstream = await startChild('upstream', ['50'], [], childJs);
  t.teardown(() => upstream.close());
  const dir = t.testdir();
  const keep = join(dir, 'current.callgrind');
  const keepMap = join(dir, 'current.perf.map');
  const before = (await upstream.stats()).counts!;
  const r = await countInstructions(childJs, 'credproxy', upstream, { kase: 'injection', warmup: 50, seconds: 1 }, keep, keepMap);
  const after = (await upstream.stats()).counts!;
  t.ok(r.requests > 0, `${r.requests} requests counted`);
  t.ok(after.withCredential - before.withCredential >= r.requests, 'every counted request reached the upstream with the credential');
  // A proxied request is hundreds of thousands of instructions; far fewer would mean counting missed it.
  t.ok(r.perRequest > 20_000 && r.perRequest < 100_000_000, `${Math.round(r.perRequest)} instructions per request`);
  t.equal(r.instructions, Math.round(r.perRequest * r.requests));
  const { compile, gc, rest } = r.split;
  t.ok(Math.abs((compile + gc + rest) * r.requests - r.instructions) < 1, 'the split adds up to the total counted');
  t.ok(rest > 0 && compile >= 0 && gc >= 0, `per request: ${Math.round(rest)} rest, ${Math.round(compile)} compiling, ${Math.round(gc)} collecting`);

  // --names: node's perf map, moved next to the callgrind file, names the JIT code bench:names lists
  t.ok(existsSync(keep) && existsSync(keepMap), 'the callgrind file and the perf map kept');
  t.match(readFileSync(keepMap, 'utf8'), /^[0-9a-f]+ [0-9a-f]+ JS:/m, 'a perf map of JS functions');
  const report = execFileSync(process.execPath, [`${root}dist/bench/callgrind-names.js`, keep, '--top', '40'], { encoding: 'utf8' });
  t.match(report, /^\s+\d+\s+[\d.]+% {2}JS:/m, 'bench:names finds the map next to the file and names JS functions');
});
