import { fork, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import type { ChildMessage } from './protocol.js';

/** A bench process: its role's ports, what it reports, and how it is closed. */
export interface Child {
  proc: ChildProcess;
  ports: Record<string, number>;
  info: Record<string, string>;
  stats(opts?: { gc?: boolean; resetTimeline?: boolean }): Promise<Extract<ChildMessage, { type: 'stats' }>>;
  close(): Promise<void>;
}

/**
 * Starts a bench process (bench/child.ts) in `role` and waits until it is ready. `childJs`
 * is this build's child unless another build's is given (npm run bench:ab).
 */
export async function startChild(
  role: string,
  args: string[] = [],
  execArgv: string[] = [],
  childJs: string | URL = new URL('./child.js', import.meta.url),
  execPath: string = process.execPath,
): Promise<Child> {
  // stdout is ignored: credproxy's per-request JSON log is written (and paid for) but not shown.
  // `execPath` other than node (valgrind, for bench:instructions) takes node and its flags in execArgv.
  const proc = fork(childJs, [role, ...args], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], execArgv, execPath });
  const ready = await new Promise<Extract<ChildMessage, { type: 'ready' }>>((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`bench child ${role} exited with code ${code} before it was ready`)));
    proc.once('message', (m: ChildMessage) => (m.type === 'ready' ? resolve(m) : reject(new Error(`bench child ${role}: unexpected ${m.type}`))));
  });
  proc.removeAllListeners('exit');
  return {
    proc,
    ports: ready.ports,
    info: ready.info ?? {},
    stats: (opts = {}) =>
      new Promise((resolve) => {
        proc.once('message', (m: ChildMessage) => {
          if (m.type === 'stats') resolve(m);
        });
        proc.send({ type: 'stats', gc: opts.gc ?? false, resetTimeline: opts.resetTimeline ?? false });
      }),
    close: () =>
      new Promise((resolve) => {
        if (proc.exitCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.send({ type: 'close' });
      }),
  };
}

/**
 * A bench script's entry: runs `main` when `moduleUrl` is the script node was started with
 * (not when a test imports the module), then exits with its code; a throw prints its stack
 * after `prefix` and exits 1.
 */
export function runMain(moduleUrl: string, main: () => Promise<number>, prefix = ''): void {
  if (!process.argv[1] || resolve(process.argv[1]) !== resolve(new URL(moduleUrl).pathname)) return;
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`${prefix}${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
