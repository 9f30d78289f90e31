import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Logger } from 'pino';

export interface Stoppable {
  server: Server;
  /** stops accepting, waits for in-flight requests, closes the pools and the store */
  close(): Promise<void>;
}

/**
 * Lets `server.close()` finish while clients hold keep-alive connections: node closes only
 * the connections idle at the moment of close(), so one that finishes a response afterwards
 * would otherwise stay open (and keep taking requests) until keep_alive_timeout_ms. Once the
 * server stops listening, every response asks the client to close and every finished one
 * closes the connections that have gone idle.
 */
export function drainOnClose(server: Server): void {
  server.on('request', (_req: IncomingMessage, res: ServerResponse) => {
    if (!server.listening) res.shouldKeepAlive = false;
    res.once('finish', () => {
      if (!server.listening) setImmediate(() => server.closeIdleConnections());
    });
  });
}

export interface ShutdownOptions {
  graceMs: number;
  log: Logger;
  /** where signals come from and how the process ends; process by default */
  proc?: Pick<NodeJS.Process, 'on' | 'exit'>;
  signals?: readonly NodeJS.Signals[];
}

/**
 * Graceful shutdown: the first SIGTERM/SIGINT stops accepting connections and lets requests
 * in flight finish (and with them any token refresh they started, which is stored before the
 * request continues), then exits 0. Connections still busy after `graceMs` are cut. A second
 * signal exits at once with 1, for the operator who does not want to wait.
 */
export function installShutdown(running: Stoppable, opts: ShutdownOptions): void {
  const proc = opts.proc ?? process;
  const signals = opts.signals ?? ['SIGTERM', 'SIGINT'];
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      opts.log.warn({ signal }, 'second signal: exiting now');
      proc.exit(1);
      return;
    }
    stopping = true;
    opts.log.info({ signal, grace_ms: opts.graceMs }, 'shutting down: no new connections, finishing requests in flight');
    const cut = setTimeout(() => {
      opts.log.warn('grace period over: closing the connections still open');
      running.server.closeAllConnections();
    }, opts.graceMs);
    cut.unref();
    running.close().then(
      () => {
        clearTimeout(cut);
        opts.log.info('shut down cleanly');
        proc.exit(0);
      },
      (err: unknown) => {
        opts.log.error({ err }, 'shutdown failed');
        proc.exit(1);
      },
    );
  };
  // `on`, not `once`: the same listener has to catch the second signal too.
  for (const s of signals) proc.on(s, onSignal);
}
