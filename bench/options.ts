import { parseArgs } from 'node:util';

/** How long and how hard the bench drives each case. */
export interface BenchOptions {
  /** seconds per case and round */
  duration: number;
  connections: number;
  /** each round runs every case once, in turn, so drift hits all cases alike */
  rounds: number;
  /** seconds of unmeasured load per proxy before the first round (JIT, pools) */
  warmup: number;
  json: boolean;
  smoke: boolean;
  /** concurrent requests of the refresh storm; 0 skips it */
  storm: number;
  /** storms run (the first with cold pools); the median is reported */
  stormRounds: number;
  /** the storm token endpoint's latency, ms */
  tokenLatency: number;
  /** requests of the flat-memory check (RSS after n/100 vs after n); 0 skips it */
  memory: number;
  /** new intercepted names per mode of the new-names phase (unique names, and under one wildcard); 0 skips it */
  newNames: number;
  /** processes of the --workers comparison (credproxy start on Redis, 1 vs N); 0 skips it */
  workers: number;
  /** the Redis the workers comparison uses */
  redis: string;
  /** a PostgreSQL database for the injection-postgres case (credproxy start on it); undefined skips it */
  postgres: string | undefined;
  /** case names to run (all when undefined) */
  only: string[] | undefined;
  /** a directory for V8 CPU profiles of the credproxy and reference processes (node --cpu-prof) */
  cpuProf: string | undefined;
  /** the load generator of the plain small-body cases; undefined: wrk when it is installed, else autocannon */
  driver: 'autocannon' | 'wrk' | undefined;
}

export const USAGE = `npm run bench -- [--duration S] [--connections N] [--rounds N] [--smoke] [--json]
  --duration S      seconds per case and round (env BENCH_DURATION; default 5)
  --connections N   concurrent keep-alive connections (env BENCH_CONNECTIONS; default 32)
  --rounds N        rounds of all cases, reported as medians (env BENCH_ROUNDS; default 1)
  --smoke           a tiny load (0.5 s per case, 4 connections) that only checks the bench works
  --storm N         refresh storm: N concurrent requests hitting a 401 (default 1000; 0 skips)
  --storm-rounds N  storms to run, the median reported; the first has cold pools (default 3)
  --token-latency MS  the storm token endpoint's own latency (default 50)
  --memory N        RSS after N/100 vs after N injected requests (default 50000; the issue's
                    full check is --memory 1000000, a few minutes here; 0 skips)
  --new-names N     CONNECT + TLS handshakes to N new intercepted names, unique and under one
                    wildcard, with /healthz latency meanwhile (default 300; 0 skips)
  --workers N       also compare credproxy start on a Redis store with 1 process and with
                    --workers N (cases injection-redis, injection-workers; default 0: skipped)
  --redis URL       the Redis of that comparison (env BENCH_REDIS; default redis://127.0.0.1:6379)
  --postgres URL    also run credproxy start on this PostgreSQL database, 1 process (case
                    injection-postgres; env BENCH_POSTGRES; default: skipped)
  --only A,B        run only these cases (by name, e.g. reference,injection)
  --cpu-prof DIR    write CPU profiles of the credproxy and reference processes to DIR
                    (node --cpu-prof; open them in Chrome DevTools or speedscope)
  --warmup S        seconds of unmeasured load right before each proxied small-body case, every
                    round (env BENCH_WARMUP; default 1; 0 skips): the JIT adapts to a case's
                    path after the case before it, which otherwise lands in the measurement
  --driver D        the load generator of the plain small-body cases: wrk or autocannon
                    (env BENCH_DRIVER; default: wrk when it is installed, else autocannon;
                    BENCH_WRK names the wrk binary)
  --json            print the results as JSON instead of a table`;

function positive(name: string, raw: string, integer: boolean): number {
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    throw new Error(`${name}: "${raw}" is not a positive ${integer ? 'integer' : 'number'}`);
  }
  return n;
}

/** `--flag N` of the bench's side scripts (bench:instructions, bench:names): undefined when not given. */
export function positiveWhole(flag: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${flag}: "${raw}" is not a positive whole number`);
  return n;
}

/** A whole number, 0 allowed (0 skips a phase). */
function count(name: string, raw: string): number {
  return raw === '0' ? 0 : positive(name, raw, true);
}

/** Flags win over the environment; `--smoke` sets small defaults that explicit values still override. */
export function parseOptions(argv: string[], env: NodeJS.ProcessEnv = process.env): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      duration: { type: 'string' },
      connections: { type: 'string' },
      rounds: { type: 'string' },
      smoke: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      only: { type: 'string' },
      storm: { type: 'string' },
      'token-latency': { type: 'string' },
      'storm-rounds': { type: 'string' },
      memory: { type: 'string' },
      'new-names': { type: 'string' },
      workers: { type: 'string' },
      redis: { type: 'string' },
      postgres: { type: 'string' },
      'cpu-prof': { type: 'string' },
      driver: { type: 'string' },
      warmup: { type: 'string' },
    },
  });
  const smoke = values.smoke ?? false;
  const pick = (flag: string | undefined, envName: string): string | undefined => flag ?? (env[envName] || undefined);
  const duration = pick(values.duration, 'BENCH_DURATION');
  const connections = pick(values.connections, 'BENCH_CONNECTIONS');
  const rounds = pick(values.rounds, 'BENCH_ROUNDS');
  const driver = pick(values.driver, 'BENCH_DRIVER');
  const warmup = pick(values.warmup, 'BENCH_WARMUP');
  if (driver !== undefined && driver !== 'wrk' && driver !== 'autocannon') throw new Error(`driver: "${driver}" is neither wrk nor autocannon`);
  return {
    duration: duration === undefined ? (smoke ? 0.5 : 5) : positive('duration', duration, false),
    connections: connections === undefined ? (smoke ? 4 : 32) : positive('connections', connections, true),
    rounds: rounds === undefined ? 1 : positive('rounds', rounds, true),
    warmup: warmup === undefined ? (smoke ? 0 : 1) : warmup === '0' ? 0 : positive('warmup', warmup, false),
    json: values.json ?? false,
    smoke,
    storm: values.storm === undefined ? (smoke ? 50 : 1000) : count('storm', values.storm),
    stormRounds: values['storm-rounds'] === undefined ? (smoke ? 1 : 3) : positive('storm-rounds', values['storm-rounds'], true),
    tokenLatency: values['token-latency'] === undefined ? 50 : count('token-latency', values['token-latency']),
    memory: values.memory === undefined ? (smoke ? 1000 : 50_000) : count('memory', values.memory),
    newNames: values['new-names'] === undefined ? (smoke ? 30 : 300) : count('new-names', values['new-names']),
    workers: values.workers === undefined ? 0 : count('workers', values.workers),
    redis: pick(values.redis, 'BENCH_REDIS') ?? 'redis://127.0.0.1:6379',
    postgres: pick(values.postgres, 'BENCH_POSTGRES'),
    only: values.only === undefined ? undefined : values.only.split(',').map((x) => x.trim()).filter((x) => x !== ''),
    cpuProf: values['cpu-prof'],
    driver,
  };
}
