import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { runMain } from './children.js';
import { positiveWhole } from './options.js';

/**
 * `npm run bench:names -- DIR/current.callgrind [--map DIR/current.perf.map]`: where the
 * instructions of a `bench:instructions -- --out DIR --names` run went, per function, with
 * V8's JIT-compiled JavaScript named. Callgrind knows no symbol for JIT code and names it by
 * address (`0x00001d4eab322040`); node's `--perf-basic-prof` map (`<hex start> <hex size>
 * <name>` a line, e.g. `3a4f1c2b4040 1c0 JS:*parseHeaders /…/undici/lib/core/util.js:436:23`)
 * says which function each address belongs to.
 */

export const NAMES_USAGE = `npm run bench:names -- FILE.callgrind [--map FILE.perf.map] [--requests N] [--top K] [--match TEXT] [--callers NAME,...]
  FILE.callgrind    a callgrind file kept by npm run bench:instructions -- --out DIR --names
  --map FILE        node's perf map of that process (default: FILE.perf.map next to it, if there)
  --requests N      divide by N requests (default: the number in FILE.requests next to it, else 1)
  --top K           functions listed by self and by inclusive cost (default 30)
  --match TEXT      list only functions whose name contains TEXT (JS: for the JavaScript ones;
                    the inclusive list is otherwise mostly libuv, node and V8's entry frames)
  --callers A,B     also list the callers of functions whose name contains A (or B), with the
                    inclusive cost of their calls`;

export interface NamesOptions {
  file: string;
  map: string | undefined;
  requests: number | undefined;
  top: number;
  match: string | undefined;
  callers: string[];
}

export function parseNamesOptions(argv: string[]): NamesOptions {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { map: { type: 'string' }, requests: { type: 'string' }, top: { type: 'string' }, match: { type: 'string' }, callers: { type: 'string' } },
  });
  if (positionals.length !== 1) throw new Error(`one callgrind file expected, ${positionals.length} given`);
  return {
    file: positionals[0]!,
    map: values.map,
    requests: positiveWhole('requests', values.requests),
    top: positiveWhole('top', values.top) ?? 30,
    match: values.match,
    callers: (values.callers ?? '').split(',').filter((s) => s !== ''),
  };
}

/** A perf map's entries by start address, for a binary search. */
export interface PerfMap {
  starts: bigint[];
  sizes: bigint[];
  names: string[];
}

/**
 * Parses a perf map (`<hex start> <hex size> <name>` a line). V8 may put new code where
 * collected code was: of entries with the same start, the last written wins (the counted
 * spell comes late in the run).
 */
export function parsePerfMap(text: string): PerfMap {
  const byStart = new Map<bigint, [bigint, string]>();
  for (const line of text.split('\n')) {
    const m = /^([0-9a-fA-F]+) ([0-9a-fA-F]+) (.*)$/.exec(line);
    if (m) byStart.set(BigInt(`0x${m[1]}`), [BigInt(`0x${m[2]}`), m[3]!]);
  }
  const starts = [...byStart.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return { starts, sizes: starts.map((s) => byStart.get(s)![0]), names: starts.map((s) => byStart.get(s)![1]) };
}

/**
 * A callgrind function name with a JIT address (`0x…`, or `???:0x…` as callgrind_annotate
 * prints it) replaced by the perf map's name of the code containing that address; any other
 * name, or an address no entry holds, is returned as it is.
 */
export function perfName(map: PerfMap, name: string): string {
  const m = /^(?:\?\?\?:)?0x([0-9a-fA-F]+)/.exec(name);
  if (!m) return name;
  const a = BigInt(`0x${m[1]}`);
  let lo = 0;
  let hi = map.starts.length; // the last start <= a is at lo - 1
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (map.starts[mid]! <= a) lo = mid + 1;
    else hi = mid;
  }
  const i = lo - 1;
  return i >= 0 && a < map.starts[i]! + map.sizes[i]! ? map.names[i]! : name;
}

/** Instructions by function: own (self), and spent in calls from one function to another. */
export interface CallgrindProfile {
  self: Map<string, number>;
  /** caller -> callee -> inclusive cost of those calls */
  calls: Map<string, Map<string, number>>;
  total: number;
}

/**
 * Reads a callgrind file's cost lines (first event, Ir), by function named through `rename`.
 * The format compresses names: `fn=(12) name` defines id 12, a later `fn=(12)` refers to it;
 * a `cfn=` may define a name first too. `calls=` says the next cost line is the inclusive cost
 * of a call to the last `cfn=`, not the function's own. Functions with the same name after
 * `rename` (callgrind names JIT code by the address it was entered at, so one JS function can
 * be several) are added up.
 */
export function parseCallgrind(text: string, rename: (name: string) => string = (n) => n): CallgrindProfile {
  const ids = new Map<string, string>();
  const resolveName = (spec: string) => {
    const m = /^\((\d+)\)(?:\s+(.*))?$/.exec(spec);
    if (!m) return rename(spec);
    if (m[2] !== undefined) ids.set(m[1]!, rename(m[2]));
    return ids.get(m[1]!) ?? spec;
  };
  const profile: CallgrindProfile = { self: new Map(), calls: new Map(), total: 0 };
  let positions = 1;
  let fn = '';
  let cfn = '';
  let inCall = false;
  for (const line of text.split('\n')) {
    const c = line.charCodeAt(0);
    if ((c >= 48 && c <= 57) || c === 43 || c === 45 || c === 42) {
      // digit, + - *: the positions, then the counts
      const parts = line.trim().split(/\s+/);
      const ir = Number(parts[positions] ?? 0);
      if (inCall) {
        inCall = false;
        let callees = profile.calls.get(fn);
        if (!callees) profile.calls.set(fn, (callees = new Map()));
        callees.set(cfn, (callees.get(cfn) ?? 0) + ir);
      } else {
        profile.self.set(fn, (profile.self.get(fn) ?? 0) + ir);
        profile.total += ir;
      }
    } else if (line.startsWith('fn=')) fn = resolveName(line.slice(3));
    else if (line.startsWith('cfn=')) cfn = resolveName(line.slice(4));
    else if (line.startsWith('calls=')) inCall = true;
    else if (line.startsWith('positions:')) positions = line.slice(10).trim().split(/\s+/).length;
  }
  return profile;
}

/**
 * Self plus the inclusive cost of every call to another function. A function calling itself
 * is not counted twice, but through others it is: with A → B → A, A's figure holds the inner
 * A twice (recursion over-counts). Inlining under-counts the other way: a function TurboFan
 * inlined has no calls of its own, its instructions are its caller's self cost, so it looks
 * cheaper (or absent) and its caller dearer. Builtins reached by a jump rather than a call are
 * their caller's too, as far as callgrind sees.
 */
export function inclusiveCosts(profile: CallgrindProfile): Map<string, number> {
  const incl = new Map(profile.self);
  for (const [caller, callees] of profile.calls) {
    for (const [callee, cost] of callees) {
      if (callee !== caller) incl.set(caller, (incl.get(caller) ?? 0) + cost);
    }
  }
  return incl;
}

/** Callers of every function whose name contains `part`, by the inclusive cost of those calls. */
export function callersOf(profile: CallgrindProfile, part: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const [caller, callees] of profile.calls) {
    for (const [callee, cost] of callees) {
      if (callee.includes(part)) out.set(caller, (out.get(caller) ?? 0) + cost);
    }
  }
  return out;
}

/** The k largest, largest first (ties by name, so the output is stable). */
export function top(costs: Map<string, number>, k: number): Array<[string, number]> {
  return [...costs].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, k);
}

/** The report bench:names prints: per request when `requests` > 1, with each row's share of the total. */
export function namesReport(profile: CallgrindProfile, opts: { requests: number; top: number; match?: string | undefined; callers: string[] }): string {
  const n = opts.requests;
  const only = (costs: Map<string, number>) => (opts.match === undefined ? costs : new Map([...costs].filter(([name]) => name.includes(opts.match!))));
  const rows = (list: Array<[string, number]>) =>
    list.map(([name, cost]) => `${(cost / n).toFixed(0).padStart(12)} ${((cost / profile.total) * 100).toFixed(1).padStart(5)}%  ${name}`).join('\n');
  const unit = n > 1 ? `instructions per request (${n} requests)` : 'instructions';
  const parts = [
    `${(profile.total / n).toFixed(0)} ${unit} in all`,
    `\nby self cost (top ${opts.top}):\n${rows(top(only(profile.self), opts.top))}`,
    `\nby inclusive cost, self + calls (top ${opts.top}):\n${rows(top(only(inclusiveCosts(profile)), opts.top))}`,
  ];
  for (const part of opts.callers) parts.push(`\ncallers of ${part} (cost of the calls):\n${rows(top(callersOf(profile, part), opts.top))}`);
  return `${parts.join('\n')}\n`;
}

async function main(): Promise<number> {
  let opts: NamesOptions;
  try {
    opts = parseNamesOptions(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${NAMES_USAGE}\n`);
    return 2;
  }
  const stem = opts.file.replace(/\.callgrind$/, '');
  const mapFile = opts.map ?? (existsSync(`${stem}.perf.map`) ? `${stem}.perf.map` : undefined);
  const requests = opts.requests ?? (existsSync(`${stem}.requests`) ? Number(readFileSync(`${stem}.requests`, 'utf8').trim()) : 1);
  const map = mapFile === undefined ? undefined : parsePerfMap(readFileSync(mapFile, 'utf8'));
  if (map === undefined) process.stderr.write('no perf map: JIT code is shown by address (bench:instructions -- --out DIR --names keeps one)\n');
  const profile = parseCallgrind(readFileSync(opts.file, 'utf8'), map ? (name) => perfName(map, name) : undefined);
  process.stdout.write(namesReport(profile, { requests, top: opts.top, match: opts.match, callers: opts.callers }));
  return 0;
}

runMain(import.meta.url, main);
