import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { runMain, startChild, type Child } from './children.js';
import { BENCH_ENTITY } from './protocol.js';
import { median } from './report.js';
import { wrkLoad, wrkSeconds, wrkVersion } from './wrk.js';

/**
 * `npm run bench:ab -- --base ../other-checkout/dist`: two credproxy builds side by side,
 * each in its own process under one upstream, the same case driven at each in turn for short
 * spells; prints the median of the paired differences of CPU time per request (this build
 * minus the base). On a shared or virtual machine absolute figures drift by 2x within an
 * hour, and a spell of one build is then compared only with the spell of the other next to
 * it: this is how the changes of issues 19 and 20 were measured.
 */

export const AB_USAGE = `npm run bench:ab -- --base DIR [--case injection|passthrough] [--pairs N] [--seconds S] [--connections N]
  --base DIR        the other build's dist folder (e.g. ../credproxy-main/dist, after npm run build there)
  --case NAME       injection (bearer, per entity; default) or passthrough
  --pairs N         spells of each build (default 16); the order alternates pair by pair
  --seconds S       seconds per spell (default 1.5)
  --connections N   concurrent keep-alive connections (default 32)
  --driver D        the load generator: wrk (default where installed; whole seconds, so spells of
                    at least 1 s) or autocannon, which itself takes CPU from the processes measured`;

export interface AbOptions {
  base: string;
  kase: 'injection' | 'passthrough';
  pairs: number;
  seconds: number;
  connections: number;
  driver: 'wrk' | 'autocannon';
}

export function parseAbOptions(argv: string[]): AbOptions {
  const { values } = parseArgs({ args: argv, options: { base: { type: 'string' }, case: { type: 'string' }, pairs: { type: 'string' }, seconds: { type: 'string' }, connections: { type: 'string' }, driver: { type: 'string' } } });
  if (values.base === undefined) throw new Error('--base: the other build’s dist folder is required');
  const kase = values.case ?? 'injection';
  if (kase !== 'injection' && kase !== 'passthrough') throw new Error(`--case: "${kase}" is not injection or passthrough`);
  const driver = values.driver ?? (wrkVersion() ? 'wrk' : 'autocannon');
  if (driver !== 'wrk' && driver !== 'autocannon') throw new Error(`--driver: "${driver}" is not wrk or autocannon`);
  const positive = (name: string, v: string | undefined, dflt: number, integer: boolean) => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!(n > 0) || (integer && !Number.isInteger(n))) throw new Error(`--${name}: "${v}" is not a positive ${integer ? 'integer' : 'number'}`);
    return n;
  };
  return {
    base: resolve(values.base),
    kase,
    pairs: positive('pairs', values.pairs, 16, true),
    seconds: positive('seconds', values.seconds, 1.5, false),
    connections: positive('connections', values.connections, 32, true),
    driver,
  };
}

/** How a build's bench child takes the upstream's ports: older builds took three numbers, newer ones a JSON object. */
function credproxyArgs(childJs: string, ports: Record<string, number>): string[] {
  const json = readFileSync(childJs, 'utf8').includes('JSON.parse(ports');
  return json ? [JSON.stringify(ports)] : [String(ports.owned), String(ports.storm), String(ports.token)];
}

export interface AbResult {
  base: number[];
  current: number[];
  /** current minus base, per pair */
  diffs: number[];
  medianDiff: number;
  problems: string[];
}

export async function runSideBySide(opts: AbOptions, currentDist: string, log: (s: string) => void = () => {}): Promise<AbResult> {
  const here = join(currentDist, 'bench', 'child.js');
  const there = join(opts.base, 'bench', 'child.js');
  const upstream = await startChild('upstream', ['50'], [], here);
  const procs: Child[] = [upstream];
  try {
    const base = await startChild('credproxy', credproxyArgs(there, upstream.ports), [], there);
    procs.push(base);
    const current = await startChild('credproxy', credproxyArgs(here, upstream.ports), [], here);
    procs.push(current);
    const upstreamPort = opts.kase === 'passthrough' ? upstream.ports.other : upstream.ports.owned;
    const target = `http://127.0.0.1:${upstreamPort}/small`;
    const headers: Record<string, string> = opts.kase === 'injection' ? { 'X-Entity-Id': BENCH_ENTITY } : {};
    const problems: string[] = [];
    const spell = async (p: Child, seconds: number): Promise<number> => {
      const before = (await p.stats()).cpuMicros;
      const r =
        opts.driver === 'wrk'
          ? await wrkLoad({ port: p.ports.proxy!, path: target, host: `127.0.0.1:${upstreamPort}`, headers, connections: opts.connections, duration: seconds })
          : await autocannon({ url: `http://127.0.0.1:${p.ports.proxy}`, connections: opts.connections, duration: seconds, requests: [{ method: 'GET', path: target, headers }] });
      const after = (await p.stats()).cpuMicros;
      if (r.errors > 0 || r.non2xx > 0) problems.push(`${p === base ? 'base' : 'current'}: ${r.errors} errors, ${r.non2xx} non-2xx answers`);
      return r.requests.total === 0 ? NaN : (after - before) / r.requests.total;
    };
    // Warm-up: JIT and pools, unmeasured.
    await spell(base, Math.min(2, opts.seconds * 2));
    await spell(current, Math.min(2, opts.seconds * 2));
    const result: AbResult = { base: [], current: [], diffs: [], medianDiff: NaN, problems };
    for (let i = 0; i < opts.pairs; i++) {
      // The order alternates, so a drift of the machine during a pair favours neither build.
      const baseFirst = i % 2 === 0;
      const x = await spell(baseFirst ? base : current, opts.seconds);
      const y = await spell(baseFirst ? current : base, opts.seconds);
      const [baseCpu, currentCpu] = baseFirst ? [x, y] : [y, x];
      result.base.push(baseCpu);
      result.current.push(currentCpu);
      result.diffs.push(currentCpu - baseCpu);
      log(`pair ${i + 1}/${opts.pairs}: base ${baseCpu.toFixed(1)} µs/req, current ${currentCpu.toFixed(1)} µs/req`);
    }
    result.medianDiff = median(result.diffs);
    return result;
  } finally {
    for (const p of procs) p.proc.kill();
  }
}

async function main(): Promise<number> {
  let opts: AbOptions;
  try {
    opts = parseAbOptions(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${AB_USAGE}\n`);
    return 2;
  }
  const currentDist = resolve(new URL('..', import.meta.url).pathname);
  const r = await runSideBySide(opts, currentDist, (s) => process.stderr.write(`${s}\n`));
  const f = (n: number) => n.toFixed(1);
  process.stdout.write(
    `${opts.kase}, ${opts.pairs} pairs of ${opts.driver === 'wrk' ? wrkSeconds(opts.seconds) : opts.seconds} s at ${opts.connections} connections (${opts.driver}): base ${f(median(r.base))} µs CPU/request, current ${f(median(r.current))}; ` +
      `median paired difference (current - base) ${f(r.medianDiff)} µs (pairs: ${r.diffs.map(f).join(' ')})\n`,
  );
  for (const p of r.problems) process.stderr.write(`problem: ${p}\n`);
  return r.problems.length > 0 ? 1 : 0;
}

runMain(import.meta.url, main);
