import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient } from '@keyv/redis';
import pg from 'pg';
import { ADMIN, BENCH_ENTITY, BENCH_TOKEN, type ChildMessage } from './protocol.js';

/**
 * credproxy started as users start it (`credproxy start`, optionally `--workers N`) on a
 * shared store: Redis for the workers comparison (the same command with one process and
 * with N), PostgreSQL for injection-postgres.
 * Its CPU time and RSS are read from /proc for the primary and every worker, so the figure
 * per request counts all of them (Linux only; elsewhere they are left out).
 */
export interface CliProxy {
  ports: Record<string, number>;
  info: Record<string, string>;
  stats(): Promise<Extract<ChildMessage, { type: 'stats' }>>;
  close(): Promise<void>;
}

const BIN = fileURLToPath(new URL('../../bin/credproxy.js', import.meta.url));
/** USER_HZ: /proc/<pid>/stat counts CPU time in these ticks (100 on every Linux this runs on). */
const TICKS_PER_SECOND = 100;
const PAGE = 4096;

function procStats(pids: number[]): { cpuMicros: number; rss: number } | undefined {
  let cpuMicros = 0;
  let rss = 0;
  try {
    for (const pid of pids) {
      // Fields after the command name, which is in parentheses and may hold spaces.
      const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
      cpuMicros += ((Number(f[11]) + Number(f[12])) / TICKS_PER_SECOND) * 1e6;
      rss += Number(f[21]) * PAGE;
    }
  } catch {
    return undefined;
  }
  return { cpuMicros, rss };
}

export async function startCliProxy(ownedPort: number, workers: number, storeUrl: string): Promise<CliProxy> {
  const dir = mkdtempSync(join(tmpdir(), 'credproxy-bench-cli-'));
  mkdirSync(join(dir, 'integrations'));
  const prefix = `credproxy-bench-${process.pid}-${workers}`;
  writeFileSync(join(dir, 'credproxy.yaml'), `store: ${storeUrl}\nstore_prefix: ${prefix}\n`);
  writeFileSync(join(dir, 'integrations', 'bench.yaml'), `hosts: ["127.0.0.1:${ownedPort}"]\nupstream: http\nauth: { type: bearer }\n`);
  // The request log goes to a file rather than a pipe this process would have to read.
  const logPath = join(dir, 'log.jsonl');
  const fd = openSync(logPath, 'w');
  const args = ['start', '--config', dir, '--port', '0', '--host', '127.0.0.1', '--log-format', 'json', ...(workers > 1 ? ['--workers', String(workers)] : [])];
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, CREDPROXY_CONFIG: '', CREDPROXY_ADMIN_TOKEN: ADMIN, CREDPROXY_SECRET_KEY: Buffer.alloc(32, 5).toString('base64'), LOG_LEVEL: 'info' },
    stdio: ['ignore', fd, 'inherit'],
  });
  closeSync(fd);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const ready = workers > 1 ? 'credproxy workers listening' : 'credproxy listening';
  let line: { url: string; worker_pids?: number[] } | undefined;
  for (let i = 0; i < 300 && !line; i++) {
    if (child.exitCode !== null) throw new Error(`credproxy start${workers > 1 ? ` --workers ${workers}` : ''} exited with ${child.exitCode}`);
    await new Promise((r) => setTimeout(r, 50));
    const found = readFileSync(logPath, 'utf8')
      .split('\n')
      .find((l) => l.includes(`"msg":"${ready}"`));
    if (found) line = JSON.parse(found) as { url: string; worker_pids?: number[] };
  }
  if (!line) {
    child.kill('SIGKILL');
    throw new Error(`credproxy start with --workers ${workers} did not listen within 15 s`);
  }
  const url = line.url;
  const pids = [child.pid!, ...(line.worker_pids ?? [])];
  const put = await fetch(`${url}/api/entities/${BENCH_ENTITY}/connections/bench`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ credentials: { token: BENCH_TOKEN } }),
  });
  if (put.status !== 200) throw new Error(`storing the bench connection answered ${put.status}: ${await put.text()}`);
  return {
    ports: { proxy: Number(/:(\d+)$/.exec(url)![1]) },
    info: { pids: pids.join(',') },
    stats: async () => {
      const s = procStats(pids);
      // Without /proc the CPU figure is left out (NaN is shown as –), never made up.
      return { type: 'stats', cpuMicros: s?.cpuMicros ?? Number.NaN, rss: s?.rss ?? Number.NaN, heapUsed: 0, heapTotal: 0, external: 0 };
    },
    close: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
      await removeRecords(storeUrl, prefix);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The bench's records, out of the shared store it used (its tables stay: credproxy made them once). */
async function removeRecords(storeUrl: string, prefix: string): Promise<void> {
  if (/^postgres(ql)?:/.test(storeUrl)) {
    const c = new pg.Client({ connectionString: storeUrl });
    await c.connect();
    try {
      await c.query('DELETE FROM credproxy_kv WHERE starts_with(key, $1)', [`${prefix}:`]);
      await c.query('DELETE FROM credproxy_locks WHERE starts_with(name, $1)', [`${prefix}:`]);
      await c.query('DELETE FROM credproxy_rate WHERE starts_with(key, $1)', [`${prefix}:`]);
    } finally {
      await c.end();
    }
    return;
  }
  const redis = createClient({ url: storeUrl });
  await redis.connect();
  for await (const keys of redis.scanIterator({ MATCH: `${prefix}:*`, COUNT: 500 })) if (keys.length > 0) await redis.del(keys);
  redis.destroy();
}
