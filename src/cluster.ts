import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import { AggregatorRegistry, type Registry } from 'prom-client';
import type { Settings } from './config/types.js';
import { isShared, requireSharedSecrets } from './store/open.js';
import { redactUrl } from './store/redis.js';
import { loadOrCreateCa } from './tls/ca.js';

/**
 * `credproxy start --workers N`: N processes (node:cluster) accept on one listen socket.
 *
 * Only with a shared store (Redis). Everything that makes several credproxy instances on
 * one Redis correct already exists and is tested: store locks (one refresh across instances),
 * cache invalidation by pub/sub (a connection written through one instance is used by the
 * others), shared rate-limit buckets, OAuth state in the store. With the embedded SQLite or
 * memory store those are per process: each worker would refresh on its own lock, serve its
 * own stale cache after another's write, and grant its own rate cap. So N > 1 with such a
 * store is refused at start rather than made subtly wrong.
 *
 * The primary accepts no requests: it checks the settings, creates the local CA once
 * (workers would race to create it), starts the workers, forwards SIGHUP and the shutdown
 * signals to them, restarts a worker that dies, and answers /metrics scrapes (forwarded by
 * the worker that took them) with the sum over all workers.
 */

/** IPC between the primary and its workers. */
type WorkerMessage = { type: 'credproxy:ready'; port: number } | { type: 'credproxy:metrics'; id: number };
type PrimaryMessage = { type: 'credproxy:metrics'; id: number; text?: string; error?: string } | { type: 'credproxy:stop'; signal: NodeJS.Signals };

/** Why `--workers N` cannot run with these settings; undefined when it can. */
export function workersProblem(settings: Settings, workers: number, env: NodeJS.ProcessEnv): string | undefined {
  if (workers <= 1) return undefined;
  if (!isShared(settings)) {
    return (
      `--workers ${workers} needs a shared store (store: postgres://… or redis://…): with store "${redactUrl(settings.store)}" each worker process ` +
      'would keep its own refresh locks, connection cache, rate-limit buckets and OAuth state, so a connection written through one ' +
      'worker would not be seen by the others. Use a Redis store, or run one process (no --workers)'
    );
  }
  try {
    requireSharedSecrets(settings, env);
  } catch (err) {
    return (err as Error).message;
  }
  return undefined;
}

export interface PrimaryOptions {
  workers: number;
  settings: Settings;
  log: Logger;
  /** a worker that dies this soon after starting is restarted after a growing delay, not at once */
  crashWindowMs?: number;
}

export interface RunningPrimary {
  /** resolves with the exit code once every worker has exited after a shutdown signal */
  done: Promise<number>;
}

/**
 * Starts the workers and resolves once all listen (with the port), or rejects when one fails
 * to start (the others are stopped then).
 */
export async function startPrimary(opts: PrimaryOptions): Promise<RunningPrimary & { port: number; pids: number[] }> {
  const { log, settings } = opts;
  const crashWindowMs = opts.crashWindowMs ?? 10_000;
  // Before any worker starts: each would otherwise find no CA and create its own.
  if (settings.tls.intercept) {
    const ca = loadOrCreateCa(settings.tls.ca_dir);
    if (ca.created) log.warn({ ca: ca.certPath }, 'created the local CA for HTTPS interception: clients must trust this certificate');
  }
  const aggregator = new AggregatorRegistry();
  const started = new Map<Worker, number>();
  let stopping = false;
  let exitCode = 0;
  let crashes = 0;
  let finish: (code: number) => void = () => undefined;
  const done = new Promise<number>((resolve) => (finish = resolve));

  const onMessage = (worker: Worker, m: WorkerMessage) => {
    if (m?.type !== 'credproxy:metrics') return;
    const reply = (r: Omit<PrimaryMessage, 'type' | 'id'>) => {
      if (worker.isConnected()) worker.send({ type: 'credproxy:metrics', id: m.id, ...r } satisfies PrimaryMessage);
    };
    aggregator.clusterMetrics().then(
      (text) => reply({ text }),
      (err: unknown) => reply({ error: (err as Error).message }),
    );
  };
  cluster.on('message', onMessage);

  const fork = (): Worker => {
    const w = cluster.fork();
    started.set(w, Date.now());
    return w;
  };
  const alive = () => Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && !w.isDead());

  // Start: every worker must listen, or none runs.
  const first = Array.from({ length: opts.workers }, fork);
  let port: number;
  try {
    const ports = await Promise.all(
      first.map(
        (w) =>
          new Promise<number>((resolve, reject) => {
            const onExit = (code: number | null, signal: string | null) =>
              reject(new Error(`worker ${w.id} exited during start (${signal ?? `code ${code}`}); its error is above`));
            w.once('exit', onExit);
            w.on('message', (m: WorkerMessage) => {
              if (m?.type !== 'credproxy:ready') return;
              w.off('exit', onExit);
              resolve(m.port);
            });
          }),
      ),
    );
    port = ports[0]!;
  } catch (err) {
    cluster.off('message', onMessage);
    for (const w of alive()) w.process.kill('SIGKILL');
    throw err;
  }

  cluster.on('exit', (w, code, signal) => {
    const ran = Date.now() - (started.get(w) ?? 0);
    started.delete(w);
    if (stopping) {
      if (code !== 0) exitCode = 1;
      log.info({ worker: w.id, pid: w.process.pid, exit_code: code, signal }, 'worker stopped');
      if (alive().length === 0) {
        cluster.off('message', onMessage);
        finish(exitCode);
      }
      return;
    }
    // A crash loop (a worker that dies as soon as it starts) backs off instead of spinning.
    crashes = ran < crashWindowMs ? crashes + 1 : 0;
    const delayMs = crashes === 0 ? 0 : Math.min(30_000, 500 * 2 ** (crashes - 1));
    log.error({ worker: w.id, pid: w.process.pid, exit_code: code, signal, ran_ms: ran, restart_in_ms: delayMs }, 'worker died; starting another');
    setTimeout(() => {
      if (stopping) return;
      const next = fork();
      next.on('message', (m: WorkerMessage) => {
        if (m?.type === 'credproxy:ready') log.info({ worker: next.id, pid: next.process.pid }, 'worker restarted');
      });
    }, delayMs).unref();
  });

  // Workers hear shutdown from us, over IPC, not from signals: a terminal's Ctrl-C or
  // systemd's KillMode=control-group signals every process of the group, and a worker that
  // got the signal twice (once from the group, once forwarded) would take it for the
  // operator's "exit now".
  const tell = (signal: NodeJS.Signals) => {
    for (const w of alive()) if (w.isConnected()) w.send({ type: 'credproxy:stop', signal } satisfies PrimaryMessage);
  };
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: stopping the workers now');
      tell(signal);
      process.exit(1);
    }
    stopping = true;
    log.info({ signal, workers: alive().length }, 'shutting down: stopping every worker');
    // Each worker drains its own connections within limits.shutdown_grace_ms (src/shutdown.ts).
    tell(signal);
    if (alive().length === 0) finish(exitCode);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('SIGHUP', () => {
    log.info({ workers: alive().length }, 'SIGHUP: every worker reloads its config');
    for (const w of alive()) w.process.kill('SIGHUP');
  });
  return { port, done, pids: first.map((w) => w.process.pid!) };
}

/**
 * In a worker: where shutdown comes from, in the shape installShutdown (src/shutdown.ts)
 * takes: the primary's stop message, or the primary going away (its IPC channel closes).
 * SIGTERM and SIGINT sent to the worker itself are ignored: the primary forwards them.
 */
export function workerShutdownSource(): Pick<NodeJS.Process, 'on' | 'exit'> {
  const handlers: Array<(signal: NodeJS.Signals) => void> = [];
  const ignore = () => undefined;
  process.on('SIGTERM', ignore);
  process.on('SIGINT', ignore);
  process.on('message', (m: PrimaryMessage) => {
    if (m?.type === 'credproxy:stop') for (const h of handlers) h(m.signal);
  });
  process.on('disconnect', () => {
    for (const h of handlers) h('SIGTERM');
  });
  return {
    // installShutdown registers one handler per signal; one is enough here.
    on: ((_signal: string, handler: (signal: NodeJS.Signals) => void) => {
      if (!handlers.includes(handler)) handlers.push(handler);
      return process;
    }) as NodeJS.Process['on'],
    exit: (code?: number) => process.exit(code),
  };
}

/** In a worker: tells the primary it listens; lets the primary collect this worker's metrics. */
export function workerReady(port: number, registry: Registry): void {
  AggregatorRegistry.setRegistries([registry]);
  // Constructing one registers the worker's answer to the primary's collection requests.
  new AggregatorRegistry();
  process.send?.({ type: 'credproxy:ready', port } satisfies WorkerMessage);
}

let nextId = 0;
const waiting = new Map<number, { resolve: (text: string) => void; reject: (err: Error) => void }>();
let listening = false;

/**
 * In a worker: the metrics of every worker, summed by the primary (a scrape reaches one
 * worker, chosen by the kernel; it must not see that worker's counts only).
 */
export function clusterMetrics(): Promise<string> {
  if (!listening) {
    listening = true;
    process.on('message', (m: PrimaryMessage) => {
      if (m?.type !== 'credproxy:metrics') return;
      const w = waiting.get(m.id);
      if (!w) return;
      waiting.delete(m.id);
      if (m.text !== undefined) w.resolve(m.text);
      else w.reject(new Error(m.error ?? 'no metrics'));
    });
  }
  const id = nextId++;
  return new Promise((resolve, reject) => {
    waiting.set(id, { resolve, reject });
    process.send?.({ type: 'credproxy:metrics', id } satisfies WorkerMessage);
  });
}

/** This process's worker number (1…N) under --workers; undefined otherwise. */
export const workerId = (): number | undefined => (cluster.isWorker ? cluster.worker?.id : undefined);
