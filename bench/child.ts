import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCredproxy } from '../src/app.js';
import { createLogger } from '../src/log.js';
import { NEW_NAMES_PARENT } from './new-names.js';
import { startFloorProxy } from './floor-proxy.js';
import { startReferenceProxy } from './reference-proxy.js';
import { ADMIN, BENCH_ENTITY, BENCH_TOKEN, type ChildMessage } from './protocol.js';
import { startBenchUpstream, type UpstreamCounts } from './upstream.js';

/**
 * One process of the bench: the upstream, credproxy or the reference proxy. Each runs in its
 * own process so that its CPU time (process.cpuUsage) is its own, not autocannon's.
 * Protocol over the IPC channel: the child sends `ready`; the parent asks `stats` and `close`.
 */

interface Started {
  ports: Record<string, number>;
  info?: Record<string, string>;
  counts?: () => UpstreamCounts;
  resetTimeline?: () => void;
  leavesIssued?: () => number;
  close(): Promise<void>;
}

async function startCredproxyRole(ownedPort: number, stormPort: number, tokenPort: number): Promise<Started> {
  const dir = mkdtempSync(join(tmpdir(), 'credproxy-bench-'));
  mkdirSync(join(dir, 'integrations'));
  writeFileSync(
    join(dir, 'credproxy.yaml'),
    'store: memory\npassthrough: allow\n# the bench upstream is on loopback, which passthrough may not reach unless listed\negress: { allow_private: ["127.0.0.0/8"] }\n' +
      `tls: { intercept: true, ca_dir: ${JSON.stringify(join(dir, 'ca'))} }\n` +
      // The new-names phase measures what a leaf costs; the per-client cap is tested in test/tls/.
      'limits: { new_leaves_per_second: 100000 }\n',
  );
  // Names under it are terminated by credproxy itself (the new-names phase): never looked up or dialled.
  writeFileSync(join(dir, 'integrations', 'newnames.yaml'), `hosts: ["*.${NEW_NAMES_PARENT}"]\nauth: { type: bearer }\n`);
  // upstream: http, so the HTTPS case measures credproxy's interception (client-side TLS) alone.
  writeFileSync(join(dir, 'integrations', 'bench.yaml'), `hosts: ["127.0.0.1:${ownedPort}"]\nupstream: http\nauth: { type: bearer }\n`);
  writeFileSync(
    join(dir, 'integrations', 'storm.yaml'),
    [
      `hosts: ["127.0.0.1:${stormPort}"]`,
      'upstream: http',
      'auth:',
      '  type: oauth2',
      `  authorize_url: http://127.0.0.1:${tokenPort}/authorize`,
      `  token_url: http://127.0.0.1:${tokenPort}/token`,
      '  client_id: bench-client',
      '  client_secret: bench-secret',
      '',
    ].join('\n'),
  );
  // The production logger (JSON, asynchronous): a log line per request is part of the cost
  // measured. The parent points this process's stdout at /dev/null.
  const running = await startCredproxy({
    configDir: dir,
    host: '127.0.0.1',
    port: 0,
    env: { CREDPROXY_ADMIN_TOKEN: ADMIN, CREDPROXY_SECRET_KEY: Buffer.alloc(32, 3).toString('base64') },
    logger: createLogger({ level: 'info' }),
  });
  const put = await fetch(`${running.url}/api/entities/${BENCH_ENTITY}/connections/bench`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ credentials: { token: BENCH_TOKEN } }),
  });
  if (put.status !== 200) throw new Error(`storing the bench connection answered ${put.status}: ${await put.text()}`);
  return {
    ports: { proxy: running.port },
    info: { caPath: running.runtime.tls.ca!.certPath },
    leavesIssued: () => running.runtime.tls.leaves?.issued ?? 0,
    close: async () => {
      await running.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const ROLES: Record<string, (args: string[]) => Promise<Started>> = {
  upstream: async ([latency]) => {
    const up = await startBenchUpstream(`Bearer ${BENCH_TOKEN}`, Number(latency ?? 50));
    return { ports: { owned: up.ownedPort, other: up.otherPort, storm: up.stormPort, token: up.tokenPort }, counts: up.counts, resetTimeline: up.resetTimeline, close: up.close };
  },
  credproxy: async ([owned, storm, token]) => startCredproxyRole(Number(owned), Number(storm), Number(token)),
  reference: async () => {
    const ref = await startReferenceProxy();
    return { ports: { proxy: ref.port }, close: ref.close };
  },
  floor: async () => {
    const floor = await startFloorProxy();
    return { ports: { proxy: floor.port }, close: floor.close };
  },
};

async function main(): Promise<void> {
  const [role, ...args] = process.argv.slice(2);
  const start = role === undefined ? undefined : ROLES[role];
  if (!start || !process.send) throw new Error(`bench child: unknown role "${role}" or no IPC channel (started by bench.js only)`);
  const started = await start(args);
  const send = (m: ChildMessage) => process.send!(m);
  process.on('message', (m: { type: string; gc?: boolean; resetTimeline?: boolean }) => {
    if (m.type === 'stats') {
      if (m.resetTimeline) started.resetTimeline?.();
      // The memory check asks for a full collection first (the credproxy child runs with
      // --expose-gc), so that what it compares is memory held, not garbage not yet collected.
      if (m.gc) (globalThis as { gc?: () => void }).gc?.();
      const cpu = process.cpuUsage();
      const mem = process.memoryUsage();
      send({ type: 'stats', cpuMicros: cpu.user + cpu.system, rss: mem.rss, heapUsed: mem.heapUsed, heapTotal: mem.heapTotal, external: mem.external, counts: started.counts?.(), leavesIssued: started.leavesIssued?.() });
    } else if (m.type === 'close') {
      void started.close().finally(() => process.exit(0));
    }
  });
  // The parent going away must not leave a server running.
  process.on('disconnect', () => process.exit(0));
  send({ type: 'ready', ports: started.ports, info: started.info });
}

main().catch((err: unknown) => {
  process.stderr.write(`bench child ${process.argv[2]}: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
