/** One run of one case: what autocannon saw plus the CPU the proxy process spent. */
export interface Sample {
  requests: number;
  seconds: number;
  bytes: number;
  p50: number;
  p99: number;
  /** CPU time of the proxy process during the run; undefined for the direct case */
  cpuMicros: number | undefined;
  rss: number | undefined;
}

export interface CaseInfo {
  name: string;
  label: string;
  /** cases are compared within a group (small JSON vs 1 MiB bodies) */
  group: string;
  via: 'direct' | 'reference' | 'floor' | 'credproxy';
  /** what drove it: wrk, autocannon or the undici client (set by the bench when it runs) */
  generator?: string;
}

export interface CaseSummary extends CaseInfo {
  rounds: number;
  rps: number;
  mbps: number;
  p50: number;
  p99: number;
  cpuPerRequest: number | undefined;
  rssMiB: number | undefined;
  vsDirect: number | undefined;
  vsReference: number | undefined;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Medians over rounds for rates and latencies; CPU is total CPU over total requests. */
export function summarize(cases: ReadonlyArray<{ info: CaseInfo; samples: Sample[] }>): CaseSummary[] {
  const rows = cases.map(({ info, samples }) => {
    const requests = samples.reduce((n, s) => n + s.requests, 0);
    const cpu = samples.every((s) => s.cpuMicros !== undefined) ? samples.reduce((n, s) => n + s.cpuMicros!, 0) : undefined;
    const rss = samples.map((s) => s.rss).filter((r): r is number => r !== undefined);
    return {
      ...info,
      rounds: samples.length,
      rps: median(samples.map((s) => s.requests / s.seconds)),
      mbps: median(samples.map((s) => s.bytes / s.seconds / 1e6)),
      p50: median(samples.map((s) => s.p50)),
      p99: median(samples.map((s) => s.p99)),
      cpuPerRequest: cpu === undefined || requests === 0 ? undefined : cpu / requests,
      rssMiB: rss.length === 0 ? undefined : Math.max(...rss) / (1024 * 1024),
      vsDirect: undefined as number | undefined,
      vsReference: undefined as number | undefined,
    };
  });
  for (const row of rows) {
    const direct = rows.find((r) => r.group === row.group && r.via === 'direct');
    const reference = rows.find((r) => r.group === row.group && r.via === 'reference');
    if (direct && direct.rps > 0 && row !== direct) row.vsDirect = row.rps / direct.rps;
    if (reference && reference.rps > 0 && (row.via === 'credproxy' || row.via === 'floor')) row.vsReference = row.rps / reference.rps;
  }
  return rows;
}

const fmt = (n: number | undefined, digits = 0) =>
  n === undefined ? '–' : n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** autocannon records latency in whole milliseconds: 0 means under one. */
const ms = (n: number) => (n < 1 ? '<1' : fmt(n, n % 1 === 0 ? 0 : 1));

/** A Markdown table, so a run can be pasted into docs/performance.md as it is. */
export function formatTable(rows: readonly CaseSummary[]): string {
  const head = ['case', 'req/s', 'MB/s', 'p50 ms', 'p99 ms', 'proxy CPU µs/req', 'proxy RSS MiB', 'vs direct', 'vs reference'];
  const body = rows.map((r) => [
    r.label,
    fmt(r.rps),
    fmt(r.mbps, 1),
    ms(r.p50),
    ms(r.p99),
    fmt(r.cpuPerRequest, 0),
    fmt(r.rssMiB, 0),
    fmt(r.vsDirect, 2),
    fmt(r.vsReference, 2),
  ]);
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  const align = `| --- | ${head.slice(1).map(() => '---:').join(' | ')} |`;
  return [line(head), align, ...body.map(line)].join('\n');
}

/** One storm (bench/phases.ts); times in ms, the timeline relative to the burst's start. */
export interface StormRun {
  ms: number;
  ok: number;
  tokenCalls: number;
  /** 401s the storm upstream answered (each one a request credproxy then replayed) */
  refused: number;
  /** CPU time credproxy spent during the storm */
  proxyCpuMs: number;
  /** CPU time the bench client spent sending and reading the burst */
  clientCpuMs: number;
  /** as the storm's upstream and token endpoint saw it (undefined: did not happen) */
  timeline: Record<'first401' | 'last401' | 'tokenStart' | 'tokenEnd' | 'first200' | 'last200', number | undefined>;
}

/** The refresh storm's outcome (bench/phases.ts): the top-level figures are the median run's. */
export interface StormReport {
  requests: number;
  ok: number;
  tokenCalls: number;
  refused: number;
  ms: number;
  /** every storm in order; the first one's upstream and token-endpoint pools were cold */
  runs: StormRun[];
  tokenLatencyMs: number;
  roundTripMs: number;
  /** issue 8's goal: 2 × token latency + one upstream round trip */
  boundMs: number;
  /** the same burst sent straight to a plain server: what the bench client alone takes (median) */
  clientFloorMs: number;
  /** the same burst through credproxy to a bearer integration: 1,000 proxied requests, no refresh (median) */
  proxyFloorMs: number;
  problems: string[];
}

/** RSS after n/100 and after n requests (bench/phases.ts). */
export interface MemoryReport {
  requests: number;
  first: number;
  rssFirstMiB: number;
  rssAllMiB: number;
  growthMiB: number;
  /** V8 heap in use at the same two points: tells a leak from a heap that merely grew its reserve */
  heapFirstMiB: number;
  heapAllMiB: number;
  /** V8 heap reserved (in use or not): RSS minus this is native memory, the allocator's share */
  heapTotalFirstMiB: number;
  heapTotalAllMiB: number;
  problems: string[];
}

export function formatStorm(s: StormReport): string {
  const mid = s.runs.find((r) => r.ms === s.ms) ?? s.runs[0];
  const t = mid?.timeline;
  const when = (x: number | undefined) => (x === undefined ? '–' : fmt(x));
  return [
    `refresh storm: ${fmt(s.requests)} concurrent requests on opened connections, median of ${s.runs.length} storm(s):`,
    `  took ${fmt(s.ms)} ms against a goal of ${fmt(s.boundMs)} ms (2 × token endpoint ${s.tokenLatencyMs} ms + upstream round trip ${fmt(s.roundTripMs, 1)} ms); ` +
      `${s.tokenCalls} token-endpoint call(s), ${s.refused} requests answered 401 upstream, ${fmt(s.ok)} ended 200`,
    `  each storm: ${s.runs.map((r) => `${fmt(r.ms)} ms (${r.refused} × 401, ${r.tokenCalls} token call(s), credproxy CPU ${fmt(r.proxyCpuMs)} ms, client CPU ${fmt(r.clientCpuMs)} ms)`).join('; ')}; the first with cold pools`,
    t ? `  median storm, ms after the burst started: first 401 ${when(t.first401)}, token call ${when(t.tokenStart)}–${when(t.tokenEnd)}, last 401 ${when(t.last401)}, first 200 ${when(t.first200)}, last 200 ${when(t.last200)}` : '',
    `  the same ${fmt(s.requests)} requests without a refresh (medians): straight to a plain server ${fmt(s.clientFloorMs)} ms (the bench client alone), through credproxy to a bearer integration ${fmt(s.proxyFloorMs)} ms`,
  ]
    .filter((l) => l !== '')
    .join('\n');
}

export function formatMemory(m: MemoryReport): string {
  const sign = m.growthMiB >= 0 ? '+' : '';
  return `memory (after a full GC): credproxy RSS ${fmt(m.rssFirstMiB, 1)} MiB after ${fmt(m.first)} requests, ${fmt(m.rssAllMiB, 1)} MiB after ${fmt(m.requests)} (${sign}${fmt(m.growthMiB, 1)} MiB; goal: within 20 MB); heap in use ${fmt(m.heapFirstMiB, 1)} then ${fmt(m.heapAllMiB, 1)} MiB, ` +
    `V8 heap reserved ${fmt(m.heapTotalFirstMiB, 1)} then ${fmt(m.heapTotalAllMiB, 1)} MiB, ` +
    `outside the V8 heap ${fmt(m.rssFirstMiB - m.heapTotalFirstMiB, 1)} then ${fmt(m.rssAllMiB - m.heapTotalAllMiB, 1)} MiB`;
}
