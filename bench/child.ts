import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCredproxy } from '../src/app.js';
import { createLogger } from '../src/log.js';
import { NEW_NAMES_PARENT } from './new-names.js';
import { startFloorProxy } from './floor-proxy.js';
import { startReferenceProxy } from './reference-proxy.js';
import { ADMIN, BENCH_ENTITY, BENCH_TOKEN, OAUTH_TOKEN, SIGV4_KEY, SIGV4_SCOPE, type ChildMessage } from './protocol.js';
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

/** The upstream's listeners credproxy's integrations point at (the upstream role's `ports`). */
type UpstreamPorts = Record<'owned' | 'storm' | 'token' | 'oauth' | 'sigv4', number>;

/** Stores one of the bench entity's connections through the admin API, as a user would. */
async function putConnection(adminUrl: string, integration: string, credentials: Record<string, unknown>): Promise<void> {
  const put = await fetch(`${adminUrl}/api/entities/${BENCH_ENTITY}/connections/${integration}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ credentials }),
  });
  if (put.status !== 200) throw new Error(`storing the ${integration} connection answered ${put.status}: ${await put.text()}`);
}

/** An oauth2 integration on `port` whose token endpoint is the upstream's (the storm's). */
function oauthIntegration(port: number, tokenPort: number): string {
  return [
    `hosts: ["127.0.0.1:${port}"]`,
    'upstream: http',
    'auth:',
    '  type: oauth2',
    `  authorize_url: http://127.0.0.1:${tokenPort}/authorize`,
    `  token_url: http://127.0.0.1:${tokenPort}/token`,
    '  client_id: bench-client',
    '  client_secret: bench-secret',
    '',
  ].join('\n');
}

async function startCredproxyRole(up: UpstreamPorts): Promise<Started> {
  const dir = mkdtempSync(join(tmpdir(), 'credproxy-bench-'));
  mkdirSync(join(dir, 'integrations'));
  writeFileSync(
    join(dir, 'credproxy.yaml'),
    'store: memory\npassthrough: allow\n# the bench upstream is on loopback, which passthrough may not reach unless listed\negress: { allow_private: ["127.0.0.0/8"] }\n' +
      `tls: { intercept: true, ca_dir: ${JSON.stringify(join(dir, 'ca'))} }\n` +
      // The new-names phase measures what a leaf costs; the per-client cap is tested in test/tls/.
      'limits: { new_leaves_per_second: 100000 }\n' +
      // BENCH_AUDIT=off, BENCH_REQUEST_METRICS=off: what a feature costs, with the switch users have (as BENCH_LOG_LEVEL=warn).
      `audit: { enabled: ${process.env.BENCH_AUDIT !== 'off'} }\nmetrics: { requests: ${process.env.BENCH_REQUEST_METRICS !== 'off'} }\n`,
  );
  // Names under it are terminated by credproxy itself (the new-names phase): never looked up or dialled.
  writeFileSync(join(dir, 'integrations', 'newnames.yaml'), `hosts: ["*.${NEW_NAMES_PARENT}"]\nauth: { type: bearer }\n`);
  // upstream: http, so the HTTPS case measures credproxy's interception (client-side TLS) alone.
  writeFileSync(join(dir, 'integrations', 'bench.yaml'), `hosts: ["127.0.0.1:${up.owned}"]\nupstream: http\nauth: { type: bearer }\n`);
  // injection-oauth: the token endpoint is the storm's, which the case must never call (the stored token is fresh).
  writeFileSync(join(dir, 'integrations', 'oauth.yaml'), oauthIntegration(up.oauth, up.token));
  writeFileSync(
    join(dir, 'integrations', 'sigv4.yaml'),
    `hosts: ["127.0.0.1:${up.sigv4}"]\nupstream: http\nauth: { type: aws_sigv4, region: ${SIGV4_SCOPE.region}, service: ${SIGV4_SCOPE.service} }\n`,
  );
  writeFileSync(join(dir, 'integrations', 'storm.yaml'), oauthIntegration(up.storm, up.token));
  // The production logger (JSON, asynchronous): a log line per request is part of the cost
  // measured. The parent points this process's stdout at /dev/null.
  const running = await startCredproxy({
    configDir: dir,
    host: '127.0.0.1',
    port: 0,
    env: { CREDPROXY_ADMIN_TOKEN: ADMIN, CREDPROXY_SECRET_KEY: Buffer.alloc(32, 3).toString('base64') },
    logger: createLogger({ level: process.env.BENCH_LOG_LEVEL ?? 'info' }),
  });
  await putConnection(running.url, 'bench', { token: BENCH_TOKEN });
  // Expires in ten years: every request takes the cached-token path, none refreshes.
  await putConnection(running.url, 'oauth', { access_token: OAUTH_TOKEN, refresh_token: 'bench-oauth-refresh', expires_in: 10 * 365 * 24 * 3600 });
  await putConnection(running.url, 'sigv4', SIGV4_KEY);
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
    const up = await startBenchUpstream(
      { bearer: `Bearer ${BENCH_TOKEN}`, oauth: `Bearer ${OAUTH_TOKEN}`, sigv4: { accessKeyId: SIGV4_KEY.access_key_id, ...SIGV4_SCOPE } },
      Number(latency ?? 50),
    );
    return {
      ports: { owned: up.ownedPort, other: up.otherPort, storm: up.stormPort, token: up.tokenPort, oauth: up.oauthPort, sigv4: up.sigv4Port },
      counts: up.counts,
      resetTimeline: up.resetTimeline,
      close: up.close,
    };
  },
  // its one argument: the upstream's ports, as JSON
  credproxy: async ([ports]) => startCredproxyRole(JSON.parse(ports ?? '{}') as UpstreamPorts),
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
