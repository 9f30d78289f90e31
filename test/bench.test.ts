import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { CASES, generatorFor, selectCases } from '../bench/cases.js';
import { parseOptions } from '../bench/options.js';
import { formatTable, summarize, type CaseInfo, type Sample } from '../bench/report.js';
import { sigv4Checker } from '../bench/upstream.js';
import { wrkVersion } from '../bench/wrk.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const script = `${root}dist/bench/bench.js`;

/** Runs the built bench with `args`; its exit code, stdout and stderr. */
async function spawnBench(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, [script, ...args], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  return { code, out, err };
}

/** Runs the built bench with `args` and checks that it exits 0; its stdout. */
async function runBench(t: Test, args: string[]): Promise<string> {
  const { code, out, err } = await spawnBench(args);
  t.equal(code, 0, 'bench exits 0');
  if (code !== 0) t.comment(err);
  return out;
}

/** The load generator the bench picks by itself on this machine. */
const generator = wrkVersion() === undefined ? 'autocannon' : 'wrk';

t.test('options: defaults, --smoke, flags over the environment, bad values refused', async (t) => {
  t.match(parseOptions([], {}), { duration: 5, connections: 32, rounds: 1, warmup: 1, json: false, smoke: false, storm: 1000, stormRounds: 3, tokenLatency: 50, memory: 50_000, newNames: 300, workers: 0, redis: 'redis://127.0.0.1:6379', only: undefined, cpuProf: undefined });
  t.match(parseOptions(['--workers', '4'], { BENCH_REDIS: 'redis://r:1' }), { workers: 4, redis: 'redis://r:1' });
  t.equal(parseOptions([], {}).postgres, undefined, 'injection-postgres only when a database is given');
  t.match(parseOptions([], { BENCH_POSTGRES: 'postgres://p@h/db' }), { postgres: 'postgres://p@h/db' });
  t.throws(() => parseOptions(['--workers', 'two'], {}), /workers: "two" is not a positive integer/);
  t.match(parseOptions(['--smoke'], {}), { duration: 0.5, connections: 4, warmup: 0, smoke: true, storm: 50, stormRounds: 1, memory: 1000, newNames: 30 });
  t.match(parseOptions(['--new-names', '0'], {}), { newNames: 0 });
  t.match(parseOptions(['--warmup', '3'], {}), { warmup: 3 });
  t.match(parseOptions([], { BENCH_WARMUP: '0' }), { warmup: 0 });
  t.throws(() => parseOptions(['--warmup', 'long'], {}), /warmup: "long" is not a positive number/);
  t.throws(() => parseOptions(['--new-names', 'many'], {}), /new-names/);
  t.match(parseOptions(['--storm', '0', '--memory', '1000000', '--token-latency', '20', '--storm-rounds', '5', '--only', 'reference, injection'], {}), { storm: 0, stormRounds: 5, memory: 1_000_000, tokenLatency: 20, only: ['reference', 'injection'] });
  t.match(parseOptions(['--cpu-prof', 'profiles'], {}), { cpuProf: 'profiles' });
  t.equal(parseOptions([], {}).driver, undefined, 'no driver named: wrk when installed, else autocannon');
  t.equal(parseOptions(['--driver', 'autocannon'], { BENCH_DRIVER: 'wrk' }).driver, 'autocannon');
  t.equal(parseOptions([], { BENCH_DRIVER: 'wrk' }).driver, 'wrk');
  t.throws(() => parseOptions(['--driver', 'ab'], {}), /driver: "ab" is neither wrk nor autocannon/);
  t.throws(() => parseOptions(['--memory', '-1'], {}), /memory/);
  t.throws(() => parseOptions(['--storm-rounds', '0'], {}), /storm-rounds: "0" is not a positive integer/);
  t.match(parseOptions([], { BENCH_DURATION: '2', BENCH_CONNECTIONS: '8', BENCH_ROUNDS: '3' }), { duration: 2, connections: 8, rounds: 3 });
  t.match(parseOptions(['--duration', '1.5', '--connections', '16'], { BENCH_DURATION: '9', BENCH_CONNECTIONS: '64' }), { duration: 1.5, connections: 16 });
  t.throws(() => parseOptions(['--connections', '2.5'], {}), /connections: "2.5" is not a positive integer/);
  t.throws(() => parseOptions(['--duration', '0'], {}), /duration: "0" is not a positive number/);
  t.throws(() => parseOptions(['--rounds', 'x'], {}), /rounds/);
  t.throws(() => parseOptions(['--fast'], {}), /Unknown option/);
});

t.test('summary: medians over rounds, CPU per request, ratios within a group', async (t) => {
  const s = (requests: number, cpuMicros?: number): Sample => ({ requests, seconds: 1, bytes: requests * 100, p50: 1, p99: 4, cpuMicros, rss: cpuMicros === undefined ? undefined : 50 * 1024 * 1024 });
  const info = (name: string, via: CaseInfo['via'], group = 'small'): CaseInfo => ({ name, label: name, group, via });
  const rows = summarize([
    { info: info('direct', 'direct'), samples: [s(1000), s(3000), s(2000)] },
    { info: info('reference', 'reference'), samples: [s(500, 50_000), s(500, 50_000), s(500, 50_000)] },
    { info: info('injection', 'credproxy'), samples: [s(1000, 40_000), s(1000, 40_000), s(1000, 40_000)] },
    { info: info('injection-1mib', 'credproxy', 'large'), samples: [s(10, 1000)] },
    { info: info('floor', 'floor'), samples: [s(750, 45_000)] },
  ]);
  t.equal(rows[0]!.rps, 2000, 'median, not mean or last');
  t.equal(rows[0]!.vsDirect, undefined);
  t.equal(rows[1]!.cpuPerRequest, 100);
  t.equal(rows[1]!.vsDirect, 0.25);
  t.equal(rows[1]!.vsReference, undefined, 'the reference is not compared with itself');
  t.equal(rows[2]!.cpuPerRequest, 40);
  t.equal(rows[2]!.vsReference, 2);
  t.equal(rows[3]!.vsDirect, undefined, 'no direct case in the large group: no ratio rather than a wrong one');
  t.equal(rows[4]!.vsReference, 1.5, 'the floor proxy is compared with the reference too');
  const table = formatTable(rows).split('\n');
  t.equal(table.length, 2 + rows.length);
  t.match(table[0], /^\| case \| req\/s \|/);
  t.match(table[4], /^\| injection \| 1,000 \| 0\.1 \| 1 \| 4 \| 40 \| 50 \| 0\.50 \| 2\.00 \|$/);
});

t.test('cases: which ones run, and on which load generator', async (t) => {
  const names = (cs: ReadonlyArray<{ name: string }>) => cs.map((c) => c.name);
  t.same(names(selectCases({ only: undefined, workers: 0, postgres: undefined })).slice(0, 7), ['direct', 'reference', 'floor', 'passthrough', 'injection', 'injection-oauth', 'injection-sigv4']);
  t.notOk(names(selectCases({ only: undefined, workers: 0, postgres: undefined })).includes('injection-redis'), 'the Redis pair needs --workers');
  t.same(names(selectCases({ only: ['injection-sigv4', 'direct'], workers: 0, postgres: undefined })), ['direct', 'injection-sigv4'], 'table order, not --only order');
  t.throws(() => selectCases({ only: ['injection-oath'], workers: 0, postgres: undefined }), /--only: no case named injection-oath/);
  const by = (g: 'wrk' | 'autocannon') => Object.fromEntries(CASES.map((c) => [c.name, generatorFor(c, g)]));
  t.match(by('wrk'), {
    direct: 'wrk', reference: 'wrk', floor: 'wrk', passthrough: 'wrk', injection: 'wrk', 'injection-oauth': 'wrk', 'injection-sigv4': 'wrk',
    'injection-1mib': 'autocannon', 'injection-upload': 'autocannon', 'injection-https': 'undici-https', 'injection-redis': 'autocannon',
  });
  t.notOk(Object.values(by('autocannon')).includes('wrk'), '--driver autocannon: no case on wrk');
});

t.test('the upstream counts a SigV4 request by its shape: the stored key id, the scope, X-Amz-Date of the same day', async (t) => {
  const carries = sigv4Checker({ accessKeyId: 'AKIAKEY', region: 'eu-west-1', service: 'execute-api' });
  const auth = (key = 'AKIAKEY', day = '20261204', scope = 'eu-west-1/execute-api', sig = 'a'.repeat(64)) =>
    `AWS4-HMAC-SHA256 Credential=${key}/${day}/${scope}/aws4_request, SignedHeaders=host;x-amz-date, Signature=${sig}`;
  const req = (authorization: string | undefined, date: string | undefined = '20261204T155900Z') => ({ headers: { authorization, 'x-amz-date': date } });
  t.ok(carries(req(auth())));
  t.notOk(carries(req(auth('AKIAOTHER'))), 'another key id');
  t.notOk(carries(req(auth(undefined, undefined, 'us-east-1/execute-api'))), 'another region');
  t.notOk(carries(req(auth(undefined, undefined, undefined, 'short'))), 'no full signature');
  t.notOk(carries({ headers: { authorization: auth() } }), 'no X-Amz-Date');
  t.notOk(carries(req(auth(), '20261203T235900Z')), 'X-Amz-Date of another day');
  t.notOk(carries(req('Bearer bench-token')), 'a bearer token');
  t.notOk(carries(req(undefined)));
});

t.test('--driver wrk without wrk: a clear error before anything starts', async (t) => {
  const { code, out, err } = await spawnBench(['--smoke', '--driver', 'wrk'], { ...process.env, BENCH_WRK: '/nonexistent/wrk' });
  t.equal(code, 2);
  t.equal(out, '');
  t.match(err, /--driver wrk: "\/nonexistent\/wrk" cannot be run; install wrk/);
});

t.test('npm run bench --smoke runs every case end to end (speed is not checked)', async (t) => {
  t.ok(existsSync(script), `${script} exists (npm test builds it first; run npm run build)`);
  const out = await runBench(t, ['--smoke', '--json']);
  const report = JSON.parse(out) as {
    machine: { cores: number; node: string; driver: string; wrk: string | null };
    problems: string[];
    results: Array<{ name: string; rps: number; cpuPerRequest: number | null; via: string; generator: string }>;
    leavesIssued: number;
    storm: { requests: number; tokenCalls: number; ok: number; refused: number; runs: Array<{ timeline: Record<string, number | undefined> }>; clientFloorMs: number; proxyFloorMs: number };
    memory: { requests: number; rssFirstMiB: number; rssAllMiB: number };
    newNames: { names: number; idle: { count: number }; runs: Array<{ mode: string; handshakes: number; failed: number; perSecond: number; leavesIssued: number; cpuPerLeafMs: number; healthz: { count: number; p99: number } }> };
  };
  t.same(report.problems, [], 'every case saw what it claims: credential injected, or no Authorization at all');
  t.same(
    report.results.map((r) => r.name),
    ['direct', 'reference', 'floor', 'passthrough', 'injection', 'injection-oauth', 'injection-sigv4', 'direct-1mib', 'reference-1mib', 'injection-1mib', 'direct-upload', 'reference-upload', 'injection-upload', 'injection-http-undici', 'injection-https'],
  );
  t.equal(report.leavesIssued, 1, 'one leaf certificate for the one intercepted host, however many connections');
  t.match(report.storm, { requests: 50, tokenCalls: 1, ok: 50 }, 'the storm: one token-endpoint call, every request answered 200 after its replay');
  t.ok(report.storm.refused >= 1, 'the upstream did refuse the stale token');
  t.equal(report.storm.runs.length, 1);
  const tl = report.storm.runs[0]!.timeline;
  t.ok(tl.first401! <= tl.tokenStart! && tl.tokenEnd! <= tl.first200! && tl.first200! <= tl.last200!, 'timeline: refused, refreshed, then answered');
  t.ok(report.storm.clientFloorMs > 0 && report.storm.proxyFloorMs > 0, 'both floors measured');
  t.equal(report.newNames.names, 30);
  t.match(
    report.newNames.runs.map((r) => ({ mode: r.mode, handshakes: r.handshakes, failed: r.failed, leavesIssued: r.leavesIssued })),
    [
      { mode: 'exact', handshakes: 30, failed: 0, leavesIssued: 30 },
      { mode: 'wildcard', handshakes: 30, failed: 0, leavesIssued: 1 },
    ],
    'new names: a leaf per unique name, one for all names under the wildcard',
  );
  for (const r of report.newNames.runs) t.ok(r.perSecond > 0 && r.cpuPerLeafMs > 0 && r.healthz.count > 0, `new names, ${r.mode}: rate, CPU and /healthz latency measured`);
  t.equal(report.memory.requests, 1000);
  t.ok(report.memory.rssFirstMiB > 0 && report.memory.rssAllMiB > 0, 'RSS measured twice');
  for (const r of report.results) {
    t.ok(r.rps > 0, `${r.name}: some requests completed`);
    if (r.via !== 'direct') t.ok(typeof r.cpuPerRequest === 'number' && r.cpuPerRequest > 0, `${r.name}: proxy CPU measured`);
  }
  t.equal(report.machine.node, process.version);
  t.equal(report.machine.driver, generator, 'the report names the load generator: wrk when installed, else autocannon');
  t.equal(report.machine.wrk === null, generator === 'autocannon');
  const gen = Object.fromEntries(report.results.map((r) => [r.name, r.generator]));
  t.match(gen, { direct: generator, 'injection-oauth': generator, 'injection-sigv4': generator, 'injection-1mib': 'autocannon', 'injection-https': 'undici-https' }, 'and each row its own');
});

t.test('npm run bench --workers 2 compares credproxy start on Redis with 1 and 2 processes; --driver autocannon (speed is not checked)', async (t) => {
  // Riding along (one bench start less): --driver autocannon puts the oauth and sigv4 cases on autocannon.
  const cases = 'injection-oauth,injection-sigv4,injection-redis,injection-workers';
  const out = await runBench(t, ['--smoke', '--json', '--driver', 'autocannon', '--workers', '2', '--only', cases, '--storm', '0', '--memory', '0', '--new-names', '0']);
  const report = JSON.parse(out) as {
    machine: { driver: string };
    problems: string[];
    results: Array<{ name: string; label: string; rps: number; cpuPerRequest: number | null; generator: string }>;
    workersRatio: number;
  };
  t.same(report.problems, [], 'each saw its credential on every request (the oauth token, a SigV4 signature), and no token-endpoint call');
  t.equal(report.machine.driver, 'autocannon');
  t.same(report.results.map((r) => [r.name, r.generator]), cases.split(',').map((n) => [n, 'autocannon']));
  const [, , one, many] = report.results;
  t.match(many!.label, /--workers 2/);
  for (const r of report.results) t.ok(r.rps > 0 && typeof r.cpuPerRequest === 'number' && r.cpuPerRequest > 0, `${r.name}: requests and CPU (all processes) measured`);
  t.ok(report.workersRatio > 0 && one!.name === 'injection-redis');
});
