import autocannon from 'autocannon';
import { burst } from './driver.js';
import { ADMIN, BENCH_ENTITY, STORM_CONNECTION, STORM_ENTITY, type ChildMessage } from './protocol.js';
import type { MemoryReport, StormReport } from './report.js';

/** The two bench processes a phase talks to. */
interface Proc {
  ports: Record<string, number>;
  stats(opts?: { gc?: boolean }): Promise<Extract<ChildMessage, { type: 'stats' }>>;
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
  times.sort((a, b) => a - b);
  return times[10]!;
}

/**
 * The refresh storm: `count` requests at once, each on its own connection (opened
 * beforehand), to an oauth2
 * integration whose upstream refuses the stored token with 401. credproxy must refresh
 * exactly once (one token-endpoint call, whatever the number of 401s) and replay each
 * request with the new token. The goal (issue 8) is a storm no longer than twice the token
 * endpoint's latency plus one upstream round trip; that is reported, not enforced.
 */
export async function runStorm(p: Procs, count: number, tokenLatencyMs: number): Promise<StormReport> {
  const proxyPort = p.credproxy.ports.proxy!;
  const rtt = await roundTripMs(p);
  await putStaleConnection(proxyPort);
  const before = (await p.upstream.stats()).counts!;
  const r = await burst(proxyPort, `http://127.0.0.1:${p.upstream.ports.storm}/storm`, { 'X-Entity-Id': STORM_ENTITY }, count, true);
  const after = (await p.upstream.stats()).counts!;
  const tokenCalls = after.tokenCalls - before.tokenCalls;
  const ok = r.statuses.get(200) ?? 0;
  const problems: string[] = [];
  if (tokenCalls !== 1) problems.push(`${tokenCalls} token-endpoint calls for one storm (expected exactly 1)`);
  if (ok !== count) problems.push(`${count - ok} of ${count} requests did not end in 200 (${JSON.stringify(Object.fromEntries(r.statuses))}, ${r.errors} errors)`);
  return {
    requests: count,
    ok,
    tokenCalls,
    refused: after.refused - before.refused,
    ms: r.ms,
    tokenLatencyMs,
    roundTripMs: rtt,
    boundMs: 2 * tokenLatencyMs + rtt,
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
