import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { runMain, startChild, type Child } from './children.js';
import { positiveWhole } from './options.js';
import { BENCH_ENTITY } from './protocol.js';
import { wrkLoad } from './wrk.js';

/**
 * `npm run bench:instructions -- [--base OTHER/dist]`: user-space instructions per proxied
 * request, counted by valgrind's callgrind, for this build (and another one). On a virtual
 * machine CPU time per request drifts by 2x within an hour and a few µs cannot be told apart;
 * an instruction count barely moves between runs, so it shows a change of 1–2% that timing
 * cannot. It counts instructions, not time: a syscall, a cache miss and the kernel's side of
 * the network are invisible to it, so it complements `npm run bench`, never replaces it.
 *
 * The credproxy process runs under callgrind with counting off; after a warm-up (the JIT
 * compiles the hot path) counting is switched on in the middle of a run of wrk load for
 * `--seconds`, then off.
 * Some of what is counted is still V8 compiling and collecting garbage; both builds pay it alike.
 */

export const INSTRUCTIONS_USAGE = `npm run bench:instructions -- [--base DIR] [--floor] [--case injection|injection-oauth|passthrough] [--warmup N] [--seconds S] [--out DIR [--names]]
  --base DIR        also count another build's dist folder, for a before/after figure
  --floor           also count the bench's floor proxy (node:http + undici dispatch, nothing else)
  --case NAME       injection (bearer, per entity; default), injection-oauth (a cached oauth2 token)
                    or passthrough
  --warmup N        requests (in runs of 2 s) before the counted run (default 12000: the hot path is
                    compiled by then); the counted run's own connections carry 5 s of load first
  --seconds S       seconds counted (default 10)
  --out DIR         keep the callgrind files there (base.callgrind, current.callgrind, floor.callgrind)
                    for callgrind_annotate or kcachegrind, and the requests each counted (current.requests, ...)
  --names           node runs with --perf-basic-prof and its perf map is kept next to each callgrind file
                    (current.perf.map, ...), naming the JIT-compiled JS functions callgrind shows as 0x...
                    addresses: npm run bench:names -- DIR/current.callgrind (needs --out)
Needs valgrind (Debian package valgrind) and wrk.`;

/** Seconds of load on the counted run's connections before counting starts. */
const SETTLE_SECONDS = 5;

/** The bench's cases this can count, and the upstream listener each goes to. */
const UPSTREAM_PORT = { injection: 'owned', 'injection-oauth': 'oauth', passthrough: 'other' } as const;
export type InstructionCase = keyof typeof UPSTREAM_PORT;
const isCase = (s: string): s is InstructionCase => Object.hasOwn(UPSTREAM_PORT, s);

export interface InstructionOptions {
  base: string | undefined;
  floor: boolean;
  kase: InstructionCase;
  warmup: number;
  seconds: number;
  out: string | undefined;
  /** keep node's perf map (--perf-basic-prof) of each counted process in `out` */
  names: boolean;
}

export function parseInstructionOptions(argv: string[]): InstructionOptions {
  const { values } = parseArgs({ args: argv, options: { base: { type: 'string' }, floor: { type: 'boolean' }, case: { type: 'string' }, warmup: { type: 'string' }, seconds: { type: 'string' }, out: { type: 'string' }, names: { type: 'boolean' } },
  });
  const kase = values.case ?? 'injection';
  if (!isCase(kase)) throw new Error(`--case: "${kase}" is not injection, injection-oauth or passthrough`);
  if (values.names && values.out === undefined) throw new Error('--names: needs --out DIR (the perf maps are kept there, next to the callgrind files)');
  return {
    base: values.base === undefined ? undefined : resolve(values.base),
    floor: values.floor ?? false,
    kase,
    warmup: positiveWhole('warmup', values.warmup) ?? 12000,
    seconds: positiveWhole('seconds', values.seconds) ?? 10,
    out: values.out === undefined ? undefined : resolve(values.out),
    names: values.names ?? false,
  };
}

/**
 * The instructions a callgrind output file counted: its `totals:` line (with counting
 * switched on and off at run time, the `summary:` line says 0), else its `summary:`.
 */
export function callgrindTotal(text: string): number {
  const m = /^totals:\s*(\d+)/m.exec(text) ?? /^summary:\s*(\d+)/m.exec(text);
  if (!m) throw new Error('no totals or summary line in the callgrind output');
  return Number(m[1]);
}

/** Where counted instructions went: V8 compiling code, V8 collecting garbage, and everything else. */
export interface InstructionSplit {
  compile: number;
  gc: number;
  rest: number;
}

/** V8's compilers (TurboFan, Maglev, the bytecode compiler and parser) and its garbage collectors, by symbol. */
const COMPILE = /v8::internal::(compiler|maglev|interpreter)::|v8::internal::(Parser|Scanner|Compiler|BytecodeGenerator|AstNode)|v8::internal::wasm::/;
const GC = /v8::internal::(Scavenger|Heap|MarkCompact|MinorMarkSweep|ConcurrentMarking|IncrementalMarking|Sweeper|Evacuat|MarkingVisitor|MainMarkingVisitor|PagedSpace|MemoryAllocator|RememberedSet)|heap::base::|cppgc::/;

/**
 * Each function's own instructions from a callgrind file (callgrind format: `fn=` starts a
 * function's cost lines, `calls=` announces that the next cost line is a call's inclusive
 * cost, not the function's own), split into compile, GC and the rest. The compiler's and the
 * collector's share changes from run to run with when V8 decides to work (a deopt at a new
 * connection, a GC just before or after the spell); the rest is steady.
 */
export function callgrindSplit(text: string): InstructionSplit {
  const names = new Map<string, string>();
  const split: InstructionSplit = { compile: 0, gc: 0, rest: 0 };
  let bucket: keyof InstructionSplit = 'rest';
  let skipNext = false;
  for (const line of text.split('\n')) {
    const c = line.charCodeAt(0);
    const isCost = (c >= 48 && c <= 57) || c === 43 || c === 45 || c === 42; // digit, + - *: a position, then counts
    if (isCost) {
      if (skipNext) {
        skipNext = false;
        continue;
      }
      const ir = Number(line.slice(line.lastIndexOf(' ') + 1));
      if (Number.isFinite(ir)) split[bucket] += ir;
    } else if (line.startsWith('fn=')) {
      const m = /^fn=(?:\((\d+)\))?\s*(.*)$/.exec(line)!;
      let name = m[2] ?? '';
      if (m[1] !== undefined) {
        if (name) names.set(m[1], name);
        else name = names.get(m[1]) ?? '';
      }
      bucket = COMPILE.test(name) ? 'compile' : GC.test(name) ? 'gc' : 'rest';
    } else if (line.startsWith('calls=')) {
      skipNext = true;
    } else if (line.startsWith('cfn=')) {
      // a called function's name may be defined here first
      const m = /^cfn=\((\d+)\)\s+(.+)$/.exec(line);
      if (m) names.set(m[1]!, m[2]!);
    }
  }
  return split;
}

export interface InstructionResult {
  requests: number;
  instructions: number;
  perRequest: number;
  /** per request, split */
  split: InstructionSplit;
}

/**
 * Counts the instructions per request of one proxy process: `role` credproxy (of the build
 * whose bench child is `childJs`) or floor. `upstream` is the bench's upstream child; `keep`
 * is where to copy the callgrind file. With `keepMap`, node runs with `--perf-basic-prof` and
 * its perf map (`/tmp/perf-<pid>.map`: start, size and name of each piece of JIT code, which
 * callgrind shows as bare addresses) is moved there once the process has exited.
 */
export async function countInstructions(
  childJs: string,
  role: 'credproxy' | 'floor',
  upstream: Child,
  opts: Pick<InstructionOptions, 'kase' | 'warmup' | 'seconds'>,
  keep?: string,
  keepMap?: string,
): Promise<InstructionResult> {
  const dir = mkdtempSync(join(tmpdir(), 'credproxy-callgrind-'));
  const out = join(dir, 'callgrind.out');
  const execArgv = ['-q', '--tool=callgrind', '--instr-atstart=no', `--callgrind-out-file=${out}`, process.execPath];
  if (keepMap !== undefined) execArgv.push('--perf-basic-prof');
  let proxy: Child | undefined;
  // valgrind runs node in its own process (no exec of a new one), so node's pid, which names the map, is the child's.
  let perfMap: string | undefined;
  try {
    // fork() runs execPath with execArgv before the script: valgrind, then node under it.
    proxy = await startChild(role, role === 'credproxy' ? [JSON.stringify(upstream.ports)] : [], execArgv, childJs, 'valgrind');
    const pid = proxy.proc.pid!;
    perfMap = `/tmp/perf-${pid}.map`;
    const upstreamPort = upstream.ports[UPSTREAM_PORT[opts.kase]]!;
    const load = (duration: number) =>
      wrkLoad({
        port: proxy!.ports.proxy!,
        path: `http://127.0.0.1:${upstreamPort}/small`,
        host: `127.0.0.1:${upstreamPort}`,
        headers: opts.kase === 'passthrough' ? {} : { 'X-Entity-Id': BENCH_ENTITY },
        connections: 8,
        duration,
      });
    let warmed = 0;
    while (warmed < opts.warmup) {
      const r = await load(2);
      if (r.errors > 0 || r.non2xx > 0) throw new Error(`warm-up: ${r.errors} errors, ${r.non2xx} non-2xx answers`);
      warmed += r.requests.total;
    }
    // Counted in the middle of one run of wrk, on connections that have carried requests for
    // SETTLE_SECONDS already: new connections make V8 deoptimize and compile again (socket and
    // stream objects of new shapes), which a separate run for the count would measure too.
    // The requests counted are those the upstream received meanwhile.
    const run = load(SETTLE_SECONDS + opts.seconds + 1);
    await sleep(SETTLE_SECONDS * 1000);
    const before = (await upstream.stats()).counts!.requests;
    execFileSync('callgrind_control', ['-i', 'on', String(pid)], { stdio: 'ignore' });
    await sleep(opts.seconds * 1000);
    execFileSync('callgrind_control', ['-i', 'off', String(pid)], { stdio: 'ignore' });
    const requests = (await upstream.stats()).counts!.requests - before;
    const r = await run;
    if (r.errors > 0 || r.non2xx > 0) throw new Error(`${r.errors} errors, ${r.non2xx} non-2xx answers`);
    if (requests <= 0) throw new Error('no request reached the upstream while counting');
    await proxy.close();
    proxy = undefined;
    const files = readdirSync(dir).filter((f) => f.startsWith('callgrind.out'));
    const texts = files.map((f) => readFileSync(join(dir, f), 'utf8'));
    const instructions = texts.reduce((sum, text) => sum + callgrindTotal(text), 0);
    const split: InstructionSplit = { compile: 0, gc: 0, rest: 0 };
    for (const text of texts) {
      const part = callgrindSplit(text);
      for (const k of ['compile', 'gc', 'rest'] as const) split[k] += part[k] / requests;
    }
    if (keep !== undefined) copyFileSync(out, keep);
    if (keepMap !== undefined) {
      // node writes the map as it compiles and flushes it at exit, which close() waited for.
      if (!existsSync(perfMap)) throw new Error(`${perfMap}: node wrote no perf map (--perf-basic-prof)`);
      copyFileSync(perfMap, keepMap);
    }
    return { requests, instructions, perRequest: instructions / requests, split };
  } finally {
    proxy?.proc.kill();
    rmSync(dir, { recursive: true, force: true });
    if (keepMap !== undefined && perfMap !== undefined) rmSync(perfMap, { force: true });
  }
}

async function main(): Promise<number> {
  let opts: InstructionOptions;
  try {
    opts = parseInstructionOptions(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${INSTRUCTIONS_USAGE}\n`);
    return 2;
  }
  const here = join(resolve(new URL('..', import.meta.url).pathname), 'bench', 'child.js');
  const upstream = await startChild('upstream', ['50'], [], here);
  try {
    const runs: Array<[string, string, 'credproxy' | 'floor']> = [];
    if (opts.floor) runs.push(['floor', here, 'floor']);
    if (opts.base) runs.push(['base', join(opts.base, 'bench', 'child.js'), 'credproxy']);
    runs.push(['current', here, 'credproxy']);
    if (opts.out) mkdirSync(opts.out, { recursive: true });
    const results: Record<string, InstructionResult> = {};
    for (const [name, childJs, role] of runs) {
      process.stderr.write(`${name}: warm-up of ${opts.warmup} requests under callgrind, then ${opts.seconds} s counted\n`);
      const keep = opts.out && join(opts.out, `${name}.callgrind`);
      const keepMap = opts.out && opts.names ? join(opts.out, `${name}.perf.map`) : undefined;
      results[name] = await countInstructions(childJs, role, upstream, opts, keep, keepMap);
      const r = results[name]!;
      // for npm run bench:names, which divides by it
      if (opts.out) writeFileSync(join(opts.out, `${name}.requests`), `${r.requests}\n`);
      const k = (n: number) => `${(n / 1000).toFixed(1)}k`;
      process.stdout.write(
        `${opts.kase}, ${name}: ${k(r.perRequest)} instructions per request (${r.requests} requests counted): ` +
          `${k(r.split.rest)} without V8's compiler (${k(r.split.compile)}) and GC (${k(r.split.gc)})\n`,
      );
    }
    // Compared without the compiler and GC, whose share depends on when V8 chose to work.
    const ratio = (a: InstructionResult, b: InstructionResult) => a.split.rest / b.split.rest;
    if (results.base && results.current) {
      const change = (ratio(results.current, results.base) - 1) * 100;
      process.stdout.write(`current vs base, without compiler and GC: ${change >= 0 ? '+' : ''}${change.toFixed(1)}%\n`);
    }
    if (results.floor && results.current) {
      process.stdout.write(`current vs floor, without compiler and GC: ${ratio(results.current, results.floor).toFixed(2)}x\n`);
    }
    return 0;
  } finally {
    await upstream.close();
  }
}

runMain(import.meta.url, main);
