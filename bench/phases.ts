import autocannon from 'autocannon';
import { burst } from './driver.js';
import { ADMIN, BENCH_ENTITY, STORM_CONNECTION, STORM_ENTITY, type ChildMessage } from './protocol.js';
import type { MemoryReport, StormReport, StormRun } from './report.js';
import type { UpstreamCounts } from './upstream.js';

/** The two bench processes a phase talks to. */
interface Proc {
  ports: Record<string, number>;
  stats(opts?: { gc?: boolean; resetTimeline?: boolean }): Promise<Extract<ChildMessage, { type: 'stats' }>>;
}
interface Procs {
  upstream: Proc;
  credproxy: Proc;
}

async function putStaleConnection(proxyPort: number): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${proxyPort}/api/entities/${STORM_ENTITY}/connections/storm`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ credentials: STORM_CONNECTION }),
  });
  if (res.status !== 200) throw new Error(`storing the storm connection answered ${res.status}: ${await res.text()}`);
}

/** Median time of sequential requests through credproxy to the upstream: one upstream round trip as the client sees it. */
async function roundTripMs(p: Procs): Promise<number> {
  const times: number[] = [];
  const target = `http://127.0.0.1:${p.upstream.ports.owned}/small`;
  for (let i = 0; i < 21; i++) {
    const r = await burst(p.credproxy.ports.proxy!, target, { 'X-Entity-Id': BENCH_ENTITY }, 1);
    times.push(r.ms);
  }
  return median(times);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)]!;
}

const cpuMs = (micros: number) => micros / 1000;

/** One storm: a stale connection stored, then `count` requests at once on opened connections. */
async function oneStorm(p: Procs, count: number): Promise<StormRun & { problems: string[] }> {
  const proxyPort = p.credproxy.ports.proxy!;
  await putStaleConnection(proxyPort);
  let before!: UpstreamCounts;
  let proxyCpu = 0;
  const r = await burst(proxyPort, `http://127.0.0.1:${p.upstream.ports.storm}/storm`, { 'X-Entity-Id': STORM_ENTITY }, count, true, async () => {
    before = (await p.upstream.stats({ resetTimeline: true })).counts!;
    proxyCpu = (await p.credproxy.stats()).cpuMicros;
  });
  const proxyCpuAfter = (await p.credproxy.stats()).cpuMicros;
  const after = (await p.upstream.stats()).counts!;
  const tokenCalls = after.tokenCalls - before.tokenCalls;
  const ok = r.statuses.get(200) ?? 0;
  const problems: string[] = [];
  if (tokenCalls !== 1) problems.push(`${tokenCalls} token-endpoint calls for one storm (expected exactly 1)`);
  if (ok !== count) problems.push(`${count - ok} of ${count} requests did not end in 200 (${JSON.stringify(Object.fromEntries(r.statuses))}, ${r.errors} errors)`);
  // The upstream's clock and ours are the same machine's: its times, relative to our start.
  const at = (x: number) => (x === 0 ? undefined : Math.round((x - r.startedAt) * 10) / 10);
  const tl = after.timeline;
  return {
    ms: r.ms,
    ok,
    tokenCalls,
    refused: after.refused - before.refused,
    proxyCpuMs: cpuMs(proxyCpuAfter - proxyCpu),
    clientCpuMs: r.clientCpuMs,
    timeline: { first401: at(tl.first401), last401: at(tl.last401), tokenStart: at(tl.tokenStart), tokenEnd: at(tl.tokenEnd), first200: at(tl.first200), last200: at(tl.last200) },
    problems,
  };
}

/**
 * The refresh storm: `count` requests at once, each on its own connection (opened
 * beforehand), to an oauth2 integration whose upstream refuses the stored token with 401.
 * credproxy must refresh exactly once (one token-endpoint call) and answer every request
 * 200. The goal (issue 8) is a storm no longer than twice the token endpoint's latency plus
 * one upstream round trip; that is reported, not enforced. Two floors measured the same way
 * say how much of a storm is not the refresh at all: the same burst sent straight to a plain
 * server (the bench client's own cost) and sent through credproxy to a bearer integration
 * (no refresh: 1,000 concurrent proxied requests). `rounds` storms run; the first has cold
 * upstream and token-endpoint pools.
 */
export async function runStorm(p: Procs, count: number, tokenLatencyMs: number, rounds = 3): Promise<StormReport> {
  const proxyPort = p.credproxy.ports.proxy!;
  const rtt = await roundTripMs(p);
  const runs: StormRun[] = [];
  const clientFloor: number[] = [];
  const proxyFloor: number[] = [];
  const problems: string[] = [];
  const floor = async (label: string, port: number, target: string, headers: Record<string, string>, into: number[]) => {
    const b = await burst(port, target, headers, count, true);
    into.push(b.ms);
    const ok = b.statuses.get(200) ?? 0;
    if (ok !== count) problems.push(`${label}: ${count - ok} of ${count} requests did not end in 200`);
  };
  // Rounds of floor, floor, storm, so that drift on a shared machine hits all three alike.
  for (let i = 0; i < rounds; i++) {
    await floor('plain server', p.upstream.ports.owned!, '/small', {}, clientFloor);
    await floor('credproxy without refresh', proxyPort, `http://127.0.0.1:${p.upstream.ports.owned}/small`, { 'X-Entity-Id': BENCH_ENTITY }, proxyFloor);
    const { problems: ps, ...run } = await oneStorm(p, count);
    runs.push(run);
    problems.push(...ps.map((m) => (rounds > 1 ? `round ${i + 1}: ${m}` : m)));
  }
  const mid = [...runs].sort((a, b) => a.ms - b.ms)[Math.floor((runs.length - 1) / 2)]!;
  return {
    requests: count,
    ok: mid.ok,
    tokenCalls: mid.tokenCalls,
    refused: mid.refused,
    ms: mid.ms,
    runs,
    tokenLatencyMs,
    roundTripMs: rtt,
    boundMs: 2 * tokenLatencyMs + rtt,
    clientFloorMs: median(clientFloor),
    proxyFloorMs: median(proxyFloor),
    problems,
  };
}

/**
 * Flat memory: RSS of the credproxy process after n/100 injected requests and after n, each
 * taken after a full garbage collection (without it, RSS swings by tens of MiB with the
 * moment V8 last collected, which says nothing about memory held).
 * The full mode is n = 1,000,000 (`--memory 1000000`); the default is smaller so
 * that a run stays short.
 */
export async function runMemoryCheck(p: Procs, n: number, connections: number): Promise<MemoryReport> {
  const problems: string[] = [];
  const drive = async (amount: number) => {
    const r = await autocannon({
      url: `http://127.0.0.1:${p.credproxy.ports.proxy}`,
      connections: Math.min(connections, amount),
      amount,
      requests: [{ method: 'GET', path: `http://127.0.0.1:${p.upstream.ports.owned}/small`, headers: { 'X-Entity-Id': BENCH_ENTITY } }],
    });
    if (r.errors > 0 || r.non2xx > 0) problems.push(`${r.errors} errors and ${r.non2xx} non-2xx answers in ${amount} requests`);
  };
  const first = Math.max(1, Math.floor(n / 100));
  await drive(first);
  const small = await p.credproxy.stats({ gc: true });
  await drive(n - first);
  const large = await p.credproxy.stats({ gc: true });
  const mib = (b: number) => b / (1024 * 1024);
  return {
    requests: n,
    first,
    rssFirstMiB: mib(small.rss),
    rssAllMiB: mib(large.rss),
    growthMiB: mib(large.rss - small.rss),
    heapFirstMiB: mib(small.heapUsed),
    heapAllMiB: mib(large.heapUsed),
    heapTotalFirstMiB: mib(small.heapTotal),
    heapTotalAllMiB: mib(large.heapTotal),
    problems,
  };
}
