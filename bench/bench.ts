import { readFileSync } from 'node:fs';
import { cpus, loadavg, platform, release } from 'node:os';
import autocannon from 'autocannon';
import { parseOptions, USAGE, type BenchOptions } from './options.js';
import { generatorFor, selectCases, type CaseDef } from './cases.js';
import { wrkBinary, wrkLoad, wrkSeconds, wrkVersion } from './wrk.js';
import { BENCH_ENTITY } from './protocol.js';
import { runMain, startChild, type Child } from './children.js';
import { formatMemory, formatStorm, formatTable, summarize, type MemoryReport, type Sample, type StormReport } from './report.js';
import { LARGE_BYTES, type UpstreamCounts } from './upstream.js';
import { undiciLoad, type LoadResult } from './driver.js';
import { runMemoryCheck, runStorm } from './phases.js';
import { formatNewNames, runNewNames, type NewNamesReport } from './new-names.js';
import { startCliProxy, type CliProxy } from './cli-proxy.js';

/**
 * `npm run bench`: the upstream, credproxy and a minimal reference proxy each run in a child
 * process (so each one's CPU time is its own); wrk (when installed) or autocannon drives the
 * load from this process, the undici client the TLS pair.
 * Every round runs every case once, in turn, so that drift on a shared machine hits all
 * cases alike. Each case checks that it measured what it claims (the credential arrived
 * upstream, or did not), so a broken proxy cannot produce a fast-looking figure.
 */

const UPLOAD_BODY = Buffer.alloc(LARGE_BYTES, 'u');

interface Processes {
  upstream: Child;
  credproxy: Child;
  reference: Child;
  floor: Child;
  redis1?: CliProxy;
  workers?: CliProxy;
  postgres1?: CliProxy;
}

function proxyOf(p: Processes, c: CaseDef): Pick<CliProxy, 'ports' | 'stats'> | undefined {
  if (c.via === 'direct') return undefined;
  if (c.process) return p[c.process]!;
  return p[c.via];
}

/** The load generator the plain small-body cases run on in this run (see generatorFor). */
type Generator = 'wrk' | 'autocannon';

function load(opts: BenchOptions, p: Processes, c: CaseDef, duration: number, generator: Generator): Promise<LoadResult> {
  const upPort = p.upstream.ports[c.port]!;
  const proxy = proxyOf(p, c);
  const headers: Record<string, string> = c.entity ? { 'X-Entity-Id': BENCH_ENTITY } : {};
  if (generatorFor(c, generator) === 'wrk') {
    // Through a proxy the request line carries the absolute target and Host names it, as curl -x sends them.
    return wrkLoad({
      port: proxy ? proxy.ports.proxy! : upPort,
      path: proxy ? `http://127.0.0.1:${upPort}${c.path}` : c.path,
      host: `127.0.0.1:${upPort}`,
      headers,
      connections: opts.connections,
      duration,
    });
  }
  if (c.driver) {
    const https = c.driver === 'undici-https';
    return undiciLoad({
      proxyPort: p.credproxy.ports.proxy!,
      target: `${https ? 'https' : 'http'}://127.0.0.1:${upPort}${c.path}`,
      headers,
      connections: opts.connections,
      duration,
      ca: https ? readFileSync(p.credproxy.info.caPath!, 'utf8') : undefined,
    });
  }
  if (c.upload) headers['content-type'] = 'application/octet-stream';
  return autocannon({
    url: `http://127.0.0.1:${proxy ? proxy.ports.proxy : upPort}`,
    connections: opts.connections,
    pipelining: 1,
    duration,
    // Through a proxy the request line carries the absolute target, as curl -x sends it.
    requests: [{ method: c.upload ? 'POST' : 'GET', path: proxy ? `http://127.0.0.1:${upPort}${c.path}` : c.path, headers, ...(c.upload ? { body: UPLOAD_BODY } : {}) }],
  }) as unknown as Promise<LoadResult>;
}

/**
 * Waits until the upstream's request count stops moving: requests still in flight through a
 * proxy when autocannon stops must be counted with the case that sent them, not the next.
 */
async function settle(upstream: Child): Promise<void> {
  let last = -1;
  for (let i = 0; i < 40; i++) {
    const { counts } = await upstream.stats();
    if (counts!.requests === last) return;
    last = counts!.requests;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function runCase(opts: BenchOptions, p: Processes, c: CaseDef, generator: Generator): Promise<{ sample: Sample; problems: string[] }> {
  const measured = proxyOf(p, c);
  await settle(p.upstream);
  const before = await Promise.all([measured?.stats(), p.upstream.stats()]);
  const result = await load(opts, p, c, opts.duration, generator);
  await settle(p.upstream);
  const after = await Promise.all([measured?.stats(), p.upstream.stats()]);

  const problems: string[] = [];
  if (result.errors > 0) problems.push(`${result.errors} connection errors (${result.timeouts} timeouts)`);
  if (result.non2xx > 0) problems.push(`${result.non2xx} answers were not 2xx`);
  if (result.requests.total === 0) problems.push('no request completed');
  const seen = diff(before[1].counts!, after[1].counts!);
  if (seen.requests < result.requests.total) problems.push(`the upstream saw ${seen.requests} requests, fewer than the ${result.requests.total} answered`);
  if (c.expect === 'credential' && seen.withCredential !== seen.requests) {
    problems.push(`${seen.requests - seen.withCredential} of ${seen.requests} requests reached the upstream without the injected credential`);
  }
  if (c.expect === 'no-authorization' && seen.withAuthorization > 0) problems.push(`${seen.withAuthorization} requests reached the upstream with an Authorization header`);
  if (c.noTokenCalls && seen.tokenCalls > 0) problems.push(`credproxy called the token endpoint ${seen.tokenCalls} time(s) for a token that had not expired`);

  const used = before[0] && after[0] ? after[0].cpuMicros - before[0].cpuMicros : undefined;
  // NaN: a process whose CPU time could not be read (no /proc): left out, not guessed.
  const cpuMicros = used !== undefined && Number.isFinite(used) ? used : undefined;
  return {
    sample: {
      requests: result.requests.total,
      seconds: result.duration,
      // For uploads the bytes that matter went up, not down.
      bytes: c.upload ? result.requests.total * LARGE_BYTES : result.throughput.total,
      p50: result.latency.p50,
      p99: result.latency.p99,
      cpuMicros,
      rss: after[0] && Number.isFinite(after[0].rss) ? after[0].rss : undefined,
    },
    problems,
  };
}

function diff(a: UpstreamCounts, b: UpstreamCounts): UpstreamCounts {
  return {
    requests: b.requests - a.requests,
    withCredential: b.withCredential - a.withCredential,
    withAuthorization: b.withAuthorization - a.withAuthorization,
    tokenCalls: b.tokenCalls - a.tokenCalls,
    refused: b.refused - a.refused,
    timeline: b.timeline,
  };
}

function machine(loadBefore: number, driver: Generator, wrk: string | undefined) {
  const list = cpus();
  // The 1-minute load average says how much else ran on the machine meanwhile.
  return {
    cores: list.length,
    cpu: list[0]?.model.trim() ?? 'unknown',
    node: process.version,
    os: `${platform()} ${release()}`,
    loadBefore,
    loadAfter: loadavg()[0]!,
    /** the load generator of the plain small-body cases (each result row names its own) */
    driver,
    /** wrk's version line, when it is installed */
    wrk: wrk ?? null,
  };
}

/** The load generators in a sentence, for the machine line. */
function generators(m: ReturnType<typeof machine>, cases: readonly CaseDef[]): string {
  const used = new Set(cases.map((c) => generatorFor(c, m.driver)));
  const names: string[] = [];
  if (used.has('wrk')) names.push(`${m.wrk ?? 'wrk'} (1 thread) for the plain small-body cases`);
  if (used.has('autocannon')) names.push(used.has('wrk') ? 'autocannon for the others' : 'autocannon');
  if (used.has('undici-http') || used.has('undici-https')) names.push('the undici client for the TLS pair');
  return `load from ${names.join(', ')}, on the same machine`;
}

async function main(): Promise<number> {
  let opts: BenchOptions;
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  let cases: CaseDef[];
  try {
    cases = selectCases(opts);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 2;
  }
  const wrk = wrkVersion();
  if (opts.driver === 'wrk' && wrk === undefined) {
    process.stderr.write(`--driver wrk: "${wrkBinary()}" cannot be run; install wrk (Debian/Ubuntu: apt-get install wrk), name its binary in BENCH_WRK, or use --driver autocannon\n`);
    return 2;
  }
  const generator: Generator = opts.driver ?? (wrk === undefined ? 'autocannon' : 'wrk');
  const loadBefore = loadavg()[0]!;
  const upstream = await startChild('upstream', [String(opts.tokenLatency)]);
  const children: Array<Pick<Child, 'close'>> = [upstream];
  try {
    const prof = (name: string) => (opts.cpuProf === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', opts.cpuProf, '--cpu-prof-name', `${name}.cpuprofile`]);
    const [credproxy, reference, floor] = await Promise.all([
      startChild('credproxy', [JSON.stringify(upstream.ports)], ['--expose-gc', ...prof('credproxy')]),
      startChild('reference', [], prof('reference')),
      startChild('floor', [], prof('floor')),
    ]);
    children.push(credproxy, reference, floor);
    const p: Processes = { upstream, credproxy, reference, floor };
    if (opts.workers > 0) {
      const [redis1, workers] = await Promise.all([startCliProxy(upstream.ports.owned!, 1, opts.redis), startCliProxy(upstream.ports.owned!, opts.workers, opts.redis)]);
      children.push(redis1, workers);
      Object.assign(p, { redis1, workers });
    }
    if (opts.postgres !== undefined) {
      const postgres1 = await startCliProxy(upstream.ports.owned!, 1, opts.postgres);
      children.push(postgres1);
      p.postgres1 = postgres1;
    }
    const log = (s: string) => process.stderr.write(`${s}\n`);

    const samples = new Map<string, Sample[]>(cases.map((c) => [c.name, []]));
    const problems: string[] = [];
    for (let round = 1; round <= opts.rounds; round++) {
      for (const c of cases) {
        const by = generatorFor(c, generator);
        // Right before the case, on its own path: a case measured straight after another
        // one paid for V8 adapting to its path (bearer after passthrough measured 20 µs more
        // than oauth2 after bearer, for the same instructions per request).
        if (opts.warmup > 0 && c.via !== 'direct' && c.group === 'small') await load(opts, p, c, opts.warmup, generator);
        log(`round ${round}/${opts.rounds}: ${c.label} (${by === 'wrk' ? wrkSeconds(opts.duration) : opts.duration} s, ${opts.connections} connections, ${by})`);
        const r = await runCase(opts, p, c, generator);
        samples.get(c.name)!.push(r.sample);
        problems.push(...r.problems.map((m) => `${c.name}, round ${round}: ${m}`));
      }
    }
    const rows = summarize(cases.map((c) => ({ info: { ...c, generator: generatorFor(c, generator) }, samples: samples.get(c.name)! })));
    const leaves = (await credproxy.stats()).leavesIssued ?? 0;
    if (cases.some((c) => c.driver === 'undici-https') && leaves !== 1) problems.push(`credproxy issued ${leaves} leaf certificates for one intercepted host (expected 1)`);
    let storm: StormReport | undefined;
    if (opts.storm > 0) {
      log(`refresh storm: ${opts.storm} concurrent requests, ${opts.stormRounds} time(s), to an upstream that refuses the stored token (token endpoint latency ${opts.tokenLatency} ms)`);
      storm = await runStorm(p, opts.storm, opts.tokenLatency, opts.stormRounds);
      problems.push(...storm.problems.map((m) => `storm: ${m}`));
    }
    let newNames: NewNamesReport | undefined;
    if (opts.newNames > 0) {
      log(`new names: ${opts.newNames} CONNECT + TLS handshakes to unique intercepted names, then ${opts.newNames} under one wildcard, /healthz probed meanwhile`);
      newNames = await runNewNames(credproxy, readFileSync(credproxy.info.caPath!, 'utf8'), opts.newNames, 8);
      problems.push(...newNames.problems.map((m) => `new names: ${m}`));
    }
    let memory: MemoryReport | undefined;
    if (opts.memory > 0) {
      log(`memory: RSS after ${opts.memory / 100} and after ${opts.memory} injected requests`);
      memory = await runMemoryCheck(p, opts.memory, opts.connections);
      problems.push(...memory.problems.map((m) => `memory: ${m}`));
    }
    const m = machine(loadBefore, generator, wrk);
    const https = rows.find((r) => r.name === 'injection-https');
    const plain = rows.find((r) => r.name === 'injection-http-undici');
    const httpsRatio = https && plain && plain.rps > 0 ? https.rps / plain.rps : undefined;
    const one = rows.find((r) => r.name === 'injection-redis');
    const many = rows.find((r) => r.name === 'injection-workers');
    const workersRatio = one && many && one.rps > 0 ? many.rps / one.rps : undefined;
    if (opts.json) {
      process.stdout.write(`${JSON.stringify({ machine: m, options: opts, results: rows, httpsRatio, workersRatio, leavesIssued: leaves, storm, newNames, memory, problems }, null, 2)}\n`);
    } else {
      const notes: string[] = [];
      if (httpsRatio !== undefined) notes.push(`intercepted HTTPS / plain HTTP (same client): ${httpsRatio.toFixed(2)}; leaf certificates issued: ${leaves}`);
      if (workersRatio !== undefined) notes.push(`--workers ${opts.workers} / 1 process (both credproxy start on Redis, same load): ${workersRatio.toFixed(2)} × the req/s on ${m.cores} cores shared with the load generator and the upstream`);
      if (storm) notes.push(formatStorm(storm));
      if (newNames) notes.push(formatNewNames(newNames));
      if (memory) notes.push(formatMemory(memory));
      process.stdout.write(
        `\n${formatTable(rows)}\n\n${notes.map((n) => `${n}\n`).join('')}\n${m.cores} cores (${m.cpu}), Node ${m.node}, ${m.os}; ` +
          `load average ${m.loadBefore.toFixed(1)} before, ${m.loadAfter.toFixed(1)} after; ${opts.connections} connections, ${opts.duration} s per case, ${opts.rounds} round(s); ` +
          `${generators(m, cases)}.\n`,
      );
    }
    for (const problem of problems) process.stderr.write(`problem: ${problem}\n`);
    return problems.length > 0 ? 1 : 0;
  } finally {
    await Promise.all(children.map((c) => c.close()));
  }
}

runMain(import.meta.url, main, 'bench: ');
