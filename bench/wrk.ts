import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LoadResult } from './driver.js';

/**
 * wrk (https://github.com/wg/wrk, Debian package `wrk`) as the bench's load generator: one
 * thread in C does not compete with the proxies for the two cores as much as autocannon does.
 * A generated Lua script sets the request once (wrk sends `path` as given, so an absolute URL
 * makes it a proxy request) and, in `done()`, prints the figures as one JSON line.
 */

/** The binary: `BENCH_WRK` names another, else `wrk` on the PATH. */
export function wrkBinary(env: NodeJS.ProcessEnv = process.env): string {
  return env.BENCH_WRK || 'wrk';
}

/** wrk's version line (`wrk 4.2.0 [epoll] …`), or undefined when it cannot be run. */
export function wrkVersion(bin = wrkBinary()): string | undefined {
  // `wrk -v` prints its version and usage and exits 1.
  const r = spawnSync(bin, ['-v'], { encoding: 'utf8', timeout: 5000 });
  if (r.error) return undefined;
  const line = `${r.stdout}${r.stderr}`.split('\n')[0]?.trim() ?? '';
  return /^wrk\s/.test(line) ? line.replace(/\s+Copyright.*$/, '') : undefined;
}

export interface WrkLoad {
  /** where wrk connects: the proxy, or the upstream itself */
  port: number;
  /** the request target as sent: an absolute URL through a proxy, a path straight to the upstream */
  path: string;
  /** the Host header (the target's host:port, as curl -x sends it) */
  host: string;
  headers: Record<string, string>;
  connections: number;
  /** seconds; wrk takes whole seconds, so it runs at least one */
  duration: number;
  bin?: string;
}

/** The line `done()` prints, before the JSON. */
export const WRK_MARK = 'credproxy-bench-wrk:';

/** A Lua string literal for any value (quotes, backslashes and control characters escaped). */
const lua = (s: string) => `"${s.replace(/[\\"]/g, '\\$&').replace(/[\x00-\x1f\x7f]/g, (c) => `\\${c.charCodeAt(0)}`)}"`;

export function wrkScript(o: Pick<WrkLoad, 'path' | 'host' | 'headers'>): string {
  return [
    'wrk.method = "GET"',
    `wrk.path = ${lua(o.path)}`,
    `wrk.headers["Host"] = ${lua(o.host)}`,
    ...Object.entries(o.headers).map(([k, v]) => `wrk.headers[${lua(k)}] = ${lua(v)}`),
    // No request()/response() functions: wrk then formats the request once and calls no Lua per request.
    'function done(summary, latency, requests)',
    '  local e = summary.errors',
    `  io.write(string.format('${WRK_MARK}{"requests":%d,"bytes":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,` +
      `"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\\n',`,
    '    summary.requests, summary.bytes, summary.duration, latency:percentile(50), latency:percentile(99),',
    '    e.connect, e.read, e.write, e.status, e.timeout))',
    'end',
    '',
  ].join('\n');
}

interface WrkDone {
  requests: number;
  bytes: number;
  duration_us: number;
  p50_us: number;
  p99_us: number;
  connect: number;
  read: number;
  write: number;
  status: number;
  timeout: number;
}

/**
 * wrk's output in the bench's shape. `non2xx` is wrk's "Non-2xx or 3xx responses" (status
 * 400 and above: wrk counts no other); the upstream's counts catch anything else.
 */
export function parseWrk(stdout: string): LoadResult {
  const line = stdout.split('\n').find((l) => l.startsWith(WRK_MARK));
  if (line === undefined) throw new Error(`wrk printed no ${WRK_MARK} line (its output: ${stdout.trim().slice(0, 500)})`);
  const d = JSON.parse(line.slice(WRK_MARK.length)) as WrkDone;
  const ms = (us: number) => Math.round(us / 100) / 10;
  return {
    requests: { total: d.requests },
    duration: d.duration_us / 1e6,
    throughput: { total: d.bytes },
    latency: { p50: ms(d.p50_us), p99: ms(d.p99_us) },
    errors: d.connect + d.read + d.write + d.timeout,
    timeouts: d.timeout,
    non2xx: d.status,
  };
}

/** wrk takes whole seconds: the duration it runs for `duration`. */
export const wrkSeconds = (duration: number): number => Math.max(1, Math.round(duration));

/** One run of wrk: 1 thread, `connections` kept-alive connections, `duration` seconds. */
export async function wrkLoad(o: WrkLoad): Promise<LoadResult> {
  const dir = mkdtempSync(join(tmpdir(), 'credproxy-bench-wrk-'));
  try {
    const script = join(dir, 'request.lua');
    writeFileSync(script, wrkScript(o));
    const seconds = wrkSeconds(o.duration);
    const args = ['-t', '1', '-c', String(o.connections), '-d', `${seconds}s`, '--timeout', '10s', '-s', script, `http://127.0.0.1:${o.port}/`];
    const child = spawn(o.bin ?? wrkBinary(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
    const code = await new Promise<number | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', resolve);
    });
    if (code !== 0) throw new Error(`wrk exited with code ${code}: ${err.trim() || out.trim()}`);
    return parseWrk(out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
