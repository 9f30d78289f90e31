import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { pollUntil } from './support/poll.js';
import { cleanPrefix, REDIS_URL, uniquePrefix } from './support/redis.js';
import { ADMIN, configDir, SECRET_KEY, startUpstream, viaProxy } from './support/servers.js';

/** `credproxy start --workers N` as users run it: the real CLI, real Redis, real sockets. */
const BIN = fileURLToPath(new URL('../bin/credproxy.js', import.meta.url));

interface Started {
  child: ChildProcess;
  port: number;
  workerPids: number[];
  /** stdout so far: one JSON log line per line */
  out(): string;
  lines(): Array<Record<string, unknown>>;
  exited: Promise<{ code: number | null; stderr: string }>;
}

function start(dir: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Started> {
  const child = spawn(process.execPath, [BIN, 'start', '--config', dir, '--port', '0', '--log-format', 'json', ...args], {
    env: { ...process.env, CREDPROXY_CONFIG: '', CREDPROXY_ADMIN_TOKEN: ADMIN, CREDPROXY_SECRET_KEY: SECRET_KEY, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<{ code: number | null; stderr: string }>((resolve) => child.on('close', (code) => resolve({ code, stderr })));
  const lines = () =>
    stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (c: Buffer) => {
      stdout += c.toString();
      const up = lines().find((l) => l.msg === 'credproxy workers listening');
      if (up) resolve({ child, port: Number(/:(\d+)$/.exec(String(up.url))![1]), workerPids: up.worker_pids as number[], out: () => stdout, lines, exited });
    });
    void exited.then(({ code }) => reject(new Error(`credproxy exited with ${code} before listening:\n${stderr}`)));
  });
}

/**
 * Waits until `check` holds, polling; the log is written asynchronously (batched). The bound
 * is generous (a worker restart on a loaded 2-core machine has taken over 10 s): not a speed.
 */
async function until(check: () => boolean, what: string, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const healthz = async (port: number, agent: http.Agent | false = false) =>
  new Promise<{ worker?: number }>((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/healthz', agent }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve(JSON.parse(body) as { worker?: number }));
      })
      .on('error', reject);
  });

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

t.test('--workers 2 on Redis: both serve, a write through one is used by the other, SIGHUP and shutdown reach both, a dead worker is replaced', async (t) => {
  const prefix = uniquePrefix();
  t.teardown(() => cleanPrefix(prefix));
  const up = await startUpstream();
  t.teardown(() => up.close());
  const dir = configDir(`store: ${REDIS_URL}\nstore_prefix: ${prefix}\nlog: { level: info }\n`, { api: `hosts: ["127.0.0.1:${up.port}"]\nupstream: http\nauth: { type: bearer }\n` });
  const p = await start(dir, ['--workers', '2']);
  t.teardown(() => {
    if (p.child.exitCode === null) p.child.kill('SIGKILL');
  });
  t.equal(p.workerPids.length, 2);

  // Each new connection goes to a worker the kernel hands it to: both answer.
  const seenWorkers = new Set<number>();
  for (let i = 0; i < 20 && seenWorkers.size < 2; i++) seenWorkers.add((await healthz(p.port)).worker!);
  t.same([...seenWorkers].sort(), [1, 2], 'both workers answered /healthz');

  // One kept-alive connection: the /healthz answer says which worker the PUT goes to.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  const put = (token: string) =>
    new Promise<number>((resolve, reject) => {
      const body = JSON.stringify({ credentials: { token } });
      const req = http.request(
        { host: '127.0.0.1', port: p.port, method: 'PUT', path: '/api/entities/alice/connections/api', agent, headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  t.equal(await put('token-one'), 200);
  // Both workers serve (and cache) the first token…
  for (let i = 0; i < 10; i++) {
    const r = await viaProxy(p.port, `${up.origin}/before-${i}`, { headers: { 'X-Entity-Id': 'alice' } });
    t.equal(r.status, 200, r.body.toString());
  }
  const writer = (await healthz(p.port, agent)).worker!;
  // …then the connection is replaced through one of them.
  t.equal(await put('token-two'), 200);
  for (let i = 0; i < 10; i++) t.equal((await viaProxy(p.port, `${up.origin}/after-${i}`, { headers: { 'X-Entity-Id': 'alice' } })).status, 200);
  const auth = (prefixPath: string) => up.seen.filter((s) => s.url.startsWith(prefixPath)).map((s) => s.headers.authorization);
  t.same(new Set(auth('/before-')), new Set(['Bearer token-one']));
  t.same(new Set(auth('/after-')), new Set(['Bearer token-two']), 'after the write, every request on every worker used the new token');
  const proxied = (pathPrefix: string) => p.lines().filter((l) => l.msg === 'proxied' && String(l.path).startsWith(pathPrefix));
  await until(() => proxied('/after-').length === 10, 'the request log');
  t.same(new Set(proxied('/before-').map((l) => l.worker)), new Set([1, 2]), 'both workers had served (and cached) the old token');
  t.ok(
    proxied('/after-').some((l) => l.worker !== writer),
    `the worker that did not take the write (worker ${writer} did) used the new token`,
  );

  // /metrics: whichever worker takes the scrape, the counts of both, summed by the primary.
  const metrics = await (await fetch(`http://127.0.0.1:${p.port}/metrics`)).text();
  const total = metrics
    .split('\n')
    .filter((l) => l.startsWith('credproxy_requests_total{integration="api"'))
    .reduce((n, l) => n + Number(l.split(' ').pop()), 0);
  t.equal(total, 20, 'credproxy_requests_total counts the requests of both workers');
  t.match(metrics, /credproxy_connections\{status="active"\} 1\n/, 'the shared connection count is not multiplied by the workers');

  // SIGHUP to the primary: every worker reloads.
  p.child.kill('SIGHUP');
  const reloaded = () => new Set(p.lines().filter((l) => l.trigger === 'SIGHUP').map((l) => l.worker)).size === 2;
  t.ok(await pollUntil(reloaded, 30_000), 'both workers reloaded on SIGHUP');

  // A worker that dies is replaced, with a log line.
  const victim = p.workerPids[0]!;
  process.kill(victim, 'SIGKILL');
  await until(() => p.lines().some((l) => l.msg === 'worker restarted'), 'a new worker');
  const died = p.lines().find((l) => l.msg === 'worker died; starting another');
  t.match(died, { pid: victim, signal: 'SIGKILL' });
  t.equal((await viaProxy(p.port, `${up.origin}/later`, { headers: { 'X-Entity-Id': 'alice' } })).status, 200);
  const restarted = p.lines().find((l) => l.msg === 'worker restarted')!;

  // SIGTERM to the primary stops every worker, and the primary exits 0.
  p.child.kill('SIGTERM');
  const { code } = await p.exited;
  t.equal(code, 0, 'exit 0 after SIGTERM');
  t.equal(p.lines().filter((l) => l.msg === 'shut down cleanly').length, 2, 'both workers shut down cleanly');
  for (const pid of [p.workerPids[1]!, restarted.pid as number]) t.notOk(alive(pid), `worker ${pid} is gone`);
});

t.test('--workers refuses what it cannot run correctly', async (t) => {
  const data = configDir('store: memory\n');
  const run = (dir: string, args: string[], env: NodeJS.ProcessEnv = {}) =>
    start(dir, args, env).then(
      () => t.fail('started'),
      (err: Error) => err.message,
    );
  const sqlite = configDir(`store: sqlite:${join(data, 'db.sqlite')}\n`);
  t.match(await run(sqlite, ['--workers', '2']), /exited with 1[\s\S]*--workers 2 needs a shared store \(store: postgres:\/\/… or redis:\/\/…\): with store "sqlite:/);
  t.match(await run(data, ['--workers', '3']), /exited with 1[\s\S]*needs a shared store[\s\S]*"memory"/);
  const prefix = uniquePrefix();
  t.teardown(() => cleanPrefix(prefix));
  const redis = configDir(`store: ${REDIS_URL}\nstore_prefix: ${prefix}\n`);
  t.match(await run(redis, ['--workers', '2'], { CREDPROXY_SECRET_KEY: '' }), /exited with 1[\s\S]*CREDPROXY_SECRET_KEY/);
  t.match(await run(data, ['--workers', '0']), /exited with 2[\s\S]*--workers: "0" is not a number of processes/);
  t.match(await run(data, ['--workers', 'many']), /exited with 2[\s\S]*--workers/);
});

t.test('--workers 2 with metrics.requests: false: the summed /metrics has no per-request series; a reload brings them back from zero on both workers', async (t) => {
  const prefix = uniquePrefix();
  t.teardown(() => cleanPrefix(prefix));
  const up = await startUpstream();
  t.teardown(() => up.close());
  const settings = (requests: boolean) => `store: ${REDIS_URL}\nstore_prefix: ${prefix}\nlog: { level: info }\nmetrics: { requests: ${requests} }\n`;
  const dir = configDir(settings(false), { api: `hosts: ["127.0.0.1:${up.port}"]\nupstream: http\nauth: { type: bearer }\n` });
  const p = await start(dir, ['--workers', '2']);
  t.teardown(() => {
    if (p.child.exitCode === null) p.child.kill('SIGKILL');
  });
  const put = await fetch(`http://127.0.0.1:${p.port}/api/entities/alice/connections/api`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ credentials: { token: 'tok' } }),
  });
  t.equal(put.status, 200);
  // A new connection each: the kernel spreads them over both workers.
  const send = async (n: number) => {
    for (let i = 0; i < n; i++) t.equal((await viaProxy(p.port, `${up.origin}/x-${i}`, { headers: { 'X-Entity-Id': 'alice' } })).status, 200);
  };
  const scrape = async () => (await fetch(`http://127.0.0.1:${p.port}/metrics`)).text();
  const requestsTotal = (text: string) =>
    text
      .split('\n')
      .filter((l) => l.startsWith('credproxy_requests_total{integration="api"'))
      .reduce((n, l) => n + Number(l.split(' ').pop()), 0);

  // The log line is written after the metrics: once all are there, so are the counts.
  const logged = (n: number) => until(() => p.lines().filter((l) => l.msg === 'proxied').length === n, 'the request log');
  await send(10);
  await logged(10);
  const off = await scrape();
  t.notMatch(off, /credproxy_requests_total|credproxy_request_duration_seconds|credproxy_upstream_latency_seconds/, 'no per-request series in the sum');
  t.match(off, /credproxy_connections\{status="active"\} 1\n/, 'the other metrics are summed as before');
  t.match(off, /^process_cpu_user_seconds_total /m, 'process metrics too');

  writeFileSync(join(dir, 'credproxy.yaml'), settings(true));
  p.child.kill('SIGHUP');
  const turnedOn = () => new Set(p.lines().filter((l) => String(l.msg).startsWith('per-request metrics turned on')).map((l) => l.worker)).size === 2;
  t.ok(await pollUntil(turnedOn, 30_000), 'both workers turned them on');
  const on = await scrape();
  t.match(on, /# TYPE credproxy_requests_total counter/, 'back in the sum');
  t.equal(requestsTotal(on), 0, 'the 10 requests made while off are not counted');
  await send(10);
  await logged(20);
  t.equal(requestsTotal(await scrape()), 10, 'counted from zero, on every worker, summed by the primary');

  p.child.kill('SIGTERM');
  t.equal((await p.exited).code, 0);
});
