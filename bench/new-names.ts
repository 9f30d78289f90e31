import http from 'node:http';
import tls from 'node:tls';
import type { ChildMessage } from './protocol.js';

/**
 * New intercepted host names (issue 15, item 5): tunnels to names credproxy has no leaf
 * certificate for yet, each a CONNECT and a full TLS handshake (verified against credproxy's
 * CA) that is then closed. The names are under the bench's `*.newnames.test` integration, so
 * every tunnel is terminated by credproxy itself: no name is ever looked up or dialled.
 * - exact: `nN.x.newnames.test`, two labels under the wildcard, so each needs its own leaf;
 * - wildcard: `nN.newnames.test`, all covered by the one `*.newnames.test` leaf.
 * Meanwhile a probe sends GET /healthz one after another on a kept-alive connection: its
 * latency is what every other client of the event loop sees while leaves are made.
 */

export const NEW_NAMES_PARENT = 'newnames.test';

interface Proc {
  ports: Record<string, number>;
  stats(): Promise<Extract<ChildMessage, { type: 'stats' }>>;
}

export interface NewNamesRun {
  mode: 'exact' | 'wildcard';
  handshakes: number;
  failed: number;
  ms: number;
  perSecond: number;
  leavesIssued: number;
  proxyCpuMs: number;
  /** credproxy CPU per leaf issued in the run (exact mode: per new name) */
  cpuPerLeafMs: number | undefined;
  healthz: Latency;
}

export interface Latency {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

export interface NewNamesReport {
  names: number;
  concurrency: number;
  /** /healthz alone, before the runs: the baseline */
  idle: Latency;
  runs: NewNamesRun[];
  /** credproxy CPU of the exact run minus the wildcard run, per name: what making a leaf costs beyond the handshake */
  signingCpuPerLeafMs: number;
  problems: string[];
}

function latency(xs: number[]): Latency {
  const s = [...xs].sort((a, b) => a - b);
  const at = (p: number) => (s.length === 0 ? 0 : Math.round(s[Math.min(s.length - 1, Math.floor(s.length * p))]! * 10) / 10);
  return { count: s.length, p50: at(0.5), p99: at(0.99), max: Math.round((s.at(-1) ?? 0) * 10) / 10 };
}

/** GET /healthz back to back until `stop()`; the latencies. */
function probeHealthz(port: number): { stop(): Promise<number[]> } {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const times: number[] = [];
  let running = true;
  const one = () =>
    new Promise<void>((resolve) => {
      const t0 = performance.now();
      http
        .get({ host: '127.0.0.1', port, path: '/healthz', agent }, (res) => {
          res.resume();
          res.once('end', () => {
            times.push(performance.now() - t0);
            resolve();
          });
        })
        .once('error', () => resolve());
    });
  const loop = (async () => {
    while (running) {
      await one();
      // A short pause: a probe, not load (about 200 probes per second at most).
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      agent.destroy();
      return times;
    },
  };
}

/** CONNECT host:443, then a TLS handshake that trusts only `ca` and checks the name; resolves when done, rejects on any failure. */
function handshake(proxyPort: number, host: string, ca: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: proxyPort, method: 'CONNECT', path: `${host}:443`, headers: { host: `${host}:443` }, agent: false });
    req.once('connect', (res, socket) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        return reject(new Error(`CONNECT ${host}: ${res.statusCode}`));
      }
      const secure = tls.connect({ socket, servername: host, ca });
      secure.once('secureConnect', () => {
        secure.destroy();
        resolve();
      });
      secure.once('error', reject);
    });
    req.once('error', reject);
    req.end();
  });
}

async function run(p: Proc, ca: string, mode: NewNamesRun['mode'], names: number, concurrency: number, tag: string): Promise<NewNamesRun> {
  const proxyPort = p.ports.proxy!;
  const hosts = Array.from({ length: names }, (_, i) => (mode === 'exact' ? `n${i}.${tag}.${NEW_NAMES_PARENT}` : `n${i}${tag}.${NEW_NAMES_PARENT}`));
  const before = await p.stats();
  const probe = probeHealthz(proxyPort);
  let next = 0;
  let failed = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < hosts.length) {
        const host = hosts[next++]!;
        await handshake(proxyPort, host, ca).catch(() => failed++);
      }
    }),
  );
  const ms = performance.now() - started;
  const healthz = latency(await probe.stop());
  const after = await p.stats();
  const leavesIssued = (after.leavesIssued ?? 0) - (before.leavesIssued ?? 0);
  const proxyCpuMs = (after.cpuMicros - before.cpuMicros) / 1000;
  return {
    mode,
    handshakes: names - failed,
    failed,
    ms,
    perSecond: ((names - failed) / ms) * 1000,
    leavesIssued,
    proxyCpuMs,
    cpuPerLeafMs: leavesIssued > 0 ? proxyCpuMs / leavesIssued : undefined,
    healthz,
  };
}

/** Both modes, `names` new names each, `concurrency` handshakes at a time; `round` keeps names new across calls. */
export async function runNewNames(p: Proc, ca: string, names: number, concurrency: number, round = 0): Promise<NewNamesReport> {
  const probe = probeHealthz(p.ports.proxy!);
  await new Promise((r) => setTimeout(r, 500));
  const idle = latency(await probe.stop());
  const tag = `r${round}`;
  const exact = await run(p, ca, 'exact', names, concurrency, tag);
  const wildcard = await run(p, ca, 'wildcard', names, concurrency, tag);
  const problems: string[] = [];
  for (const r of [exact, wildcard]) if (r.failed > 0) problems.push(`${r.mode}: ${r.failed} of ${names} handshakes failed`);
  if (exact.leavesIssued !== names) problems.push(`exact: ${exact.leavesIssued} leaves issued for ${names} new names (expected one each)`);
  if (wildcard.leavesIssued !== 1) problems.push(`wildcard: ${wildcard.leavesIssued} leaves issued for ${names} names under one wildcard (expected 1)`);
  return { names, concurrency, idle, runs: [exact, wildcard], signingCpuPerLeafMs: (exact.proxyCpuMs - wildcard.proxyCpuMs) / names, problems };
}

export function formatNewNames(r: NewNamesReport): string {
  const f = (x: number, d = 0) => x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
  const lat = (l: Latency) => `p50 ${f(l.p50, 1)} / p99 ${f(l.p99, 1)} / max ${f(l.max, 1)} ms (${l.count} probes)`;
  return [
    `new intercepted names: ${r.names} CONNECT + TLS handshakes per mode, ${r.concurrency} at a time; /healthz alone ${lat(r.idle)}`,
    ...r.runs.map(
      (x) =>
        `  ${x.mode === 'exact' ? 'unique names (a leaf each)' : 'under one wildcard (one leaf)'}: ${f(x.perSecond)} handshakes/s, ${x.leavesIssued} leaves issued, ` +
        `credproxy CPU ${f(x.proxyCpuMs)} ms${x.cpuPerLeafMs === undefined ? '' : ` (${f(x.cpuPerLeafMs, 1)} ms per leaf, handshake included)`}; /healthz meanwhile ${lat(x.healthz)}`,
    ),
    `  making a leaf, beyond the handshake (CPU of the unique run minus the wildcard run, per name): ${f(r.signingCpuPerLeafMs, 1)} ms`,
  ].join('\n');
}
