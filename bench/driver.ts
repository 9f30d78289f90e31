import { Pool, ProxyAgent, type Dispatcher } from 'undici';

/** What one load run gives, in the shape of the autocannon fields the bench reads. */
export interface LoadResult {
  requests: { total: number };
  duration: number;
  throughput: { total: number };
  latency: { p50: number; p99: number };
  errors: number;
  timeouts: number;
  non2xx: number;
}

export interface UndiciLoad {
  /** the proxy: credproxy's listener */
  proxyPort: number;
  /** absolute target URL (http://host:port/path or https://…) */
  target: string;
  headers: Record<string, string>;
  connections: number;
  duration: number;
  /** for https targets: the CA that signs credproxy's intercepting leaves */
  ca?: string;
}

/**
 * A load driver for what autocannon cannot do: HTTPS through a proxy (CONNECT, then TLS to
 * credproxy's intercepting leaf, kept alive: undici's ProxyAgent), and, for a fair ratio,
 * the same client sending plain absolute-form requests over kept-alive connections. Each of
 * `connections` workers sends its next request when the previous answer is read.
 */
export async function undiciLoad(opts: UndiciLoad): Promise<LoadResult> {
  const url = new URL(opts.target);
  const proxy = `http://127.0.0.1:${opts.proxyPort}`;
  const dispatcher: Dispatcher =
    url.protocol === 'https:'
      ? new ProxyAgent({ uri: proxy, requestTls: { ca: opts.ca }, connections: opts.connections, keepAliveTimeout: 60_000 } as ProxyAgent.Options)
      : new Pool(proxy, { connections: opts.connections, keepAliveTimeout: 60_000, pipelining: 1 });
  const path = url.protocol === 'https:' ? url.pathname : opts.target;
  const origin = url.protocol === 'https:' ? url.origin : proxy;
  const latencies: number[] = [];
  let bytes = 0;
  let errors = 0;
  let non2xx = 0;
  const started = performance.now();
  const end = started + opts.duration * 1000;
  const worker = async () => {
    while (performance.now() < end) {
      const t0 = performance.now();
      try {
        const res = await dispatcher.request({ origin, path, method: 'GET', headers: opts.headers });
        for await (const chunk of res.body) bytes += (chunk as Buffer).length;
        if (res.statusCode < 200 || res.statusCode > 299) non2xx++;
        latencies.push(performance.now() - t0);
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: opts.connections }, worker));
  const seconds = (performance.now() - started) / 1000;
  await dispatcher.close();
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => (latencies.length === 0 ? 0 : Math.round(latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))]! * 10) / 10);
  return { requests: { total: latencies.length }, duration: seconds, throughput: { total: bytes }, latency: { p50: pct(0.5), p99: pct(0.99) }, errors, timeouts: 0, non2xx };
}

export interface BurstResult {
  ms: number;
  /** when the burst started, epoch ms (sub-ms precision): other processes' times are compared to it */
  startedAt: number;
  statuses: Map<number, number>;
  errors: number;
  /** CPU time this process (the client) spent during the timed part */
  clientCpuMs: number;
}

/**
 * Sends `count` requests at once, each on its own connection, and waits for all answers.
 * With `warm`, the connections are opened first (a request each to credproxy's /healthz), so
 * that what is timed is the burst itself, not 1,000 TCP handshakes.
 */
export async function burst(
  proxyPort: number,
  target: string,
  headers: Record<string, string>,
  count: number,
  warm = false,
  /** runs after the connections are opened, just before the timed burst */
  beforeTimed?: () => Promise<void>,
): Promise<BurstResult> {
  const pool = new Pool(`http://127.0.0.1:${proxyPort}`, { connections: count, pipelining: 1, keepAliveTimeout: 60_000 });
  if (warm) {
    await Promise.all(
      Array.from({ length: count }, async () => {
        const res = await pool.request({ path: '/healthz', method: 'GET' });
        await res.body.dump();
      }),
    );
  }
  await beforeTimed?.();
  const statuses = new Map<number, number>();
  let errors = 0;
  const cpu = process.cpuUsage();
  const started = performance.now();
  const startedAt = performance.timeOrigin + started;
  await Promise.all(
    Array.from({ length: count }, async () => {
      try {
        const res = await pool.request({ path: target, method: 'GET', headers });
        await res.body.dump();
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
      } catch {
        errors++;
      }
    }),
  );
  const ms = performance.now() - started;
  const used = process.cpuUsage(cpu);
  await pool.close();
  return { ms, startedAt, statuses, errors, clientCpuMs: (used.user + used.system) / 1000 };
}
