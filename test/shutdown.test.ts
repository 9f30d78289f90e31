import { spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import pino from 'pino';
import { installShutdown } from '../src/shutdown.js';
import { ADMIN, configDir, LogCapture, SECRET_KEY, startProxy, startUpstream, viaProxy } from './support/servers.js';

/** A signal source and exit recorder standing in for `process`, so the test process survives. */
class FakeProcess extends EventEmitter {
  exits: number[] = [];
  exited = new Promise<number>((resolve) => this.once('exited', resolve));
  exit(code?: number): never {
    this.exits.push(code ?? 0);
    this.emit('exited', code ?? 0);
    return undefined as never;
  }
}

/** An upstream that holds each response until the test lets it go. */
async function heldUpstream() {
  const releases: Array<() => void> = [];
  let arrived: () => void = () => {};
  const first = new Promise<void>((r) => (arrived = r));
  const up = await startUpstream((_req, res) => {
    releases.push(() => res.end('finished'));
    arrived();
  });
  return { up, first, release: () => releases.forEach((r) => r()) };
}

t.test('first signal: stop accepting, finish in-flight requests, exit 0', async (t) => {
  const held = await heldUpstream();
  t.teardown(() => held.up.close());
  const proxy = await startProxy(configDir('store: memory\negress: { allow_private: ["127.0.0.0/8"] }\n'));
  const proc = new FakeProcess();
  const logs = new LogCapture();
  installShutdown(proxy, { graceMs: 60_000, log: pino(logs), proc: proc as unknown as NodeJS.Process });
  // A keep-alive client: its connection must not hold the shutdown open after its answer.
  const agent = new http.Agent({ keepAlive: true });
  t.teardown(() => agent.destroy());
  const inflight = new Promise<{ status: number; body: string; connection: string | undefined }>((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port: proxy.port, path: `${held.up.origin}/slow`, agent }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, connection: res.headers.connection }));
      })
      .on('error', reject);
  });
  await held.first;
  proc.emit('SIGTERM', 'SIGTERM');
  // Once close() ran, the listener is gone: a new connection is refused.
  await new Promise<void>((resolve) => {
    const s = net.connect(proxy.port, '127.0.0.1');
    s.on('error', (err: NodeJS.ErrnoException) => {
      t.equal(err.code, 'ECONNREFUSED', 'no new connections');
      resolve();
    });
    s.on('connect', () => {
      t.fail('a new connection was accepted during shutdown');
      s.destroy();
      resolve();
    });
  });
  t.same(proc.exits, [], 'no exit while a request is in flight');
  held.release();
  const r = await inflight;
  t.equal(r.status, 200);
  t.equal(r.body, 'finished', 'the in-flight request got its whole answer');
  t.equal(await proc.exited, 0, 'exit 0, without waiting for the keep-alive connection to time out');
  t.match(logs.text, /shutting down/);
  t.match(logs.text, /shut down cleanly/);
});

t.test('second signal exits at once with 1', async (t) => {
  const held = await heldUpstream();
  const proxy = await startProxy(configDir('store: memory\negress: { allow_private: ["127.0.0.0/8"] }\n'));
  t.teardown(async () => {
    proxy.server.closeAllConnections();
    await held.up.close();
  });
  const proc = new FakeProcess();
  installShutdown(proxy, { graceMs: 60_000, log: pino(new LogCapture()), proc: proc as unknown as NodeJS.Process });
  const inflight = viaProxy(proxy.port, `${held.up.origin}/slow`).catch(() => undefined);
  await held.first;
  proc.emit('SIGINT', 'SIGINT');
  proc.emit('SIGINT', 'SIGINT');
  t.same(proc.exits, [1]);
  held.release();
  await inflight;
});

t.test('the grace period cuts connections that do not finish', async (t) => {
  const held = await heldUpstream();
  t.teardown(() => held.up.close());
  const proxy = await startProxy(configDir('store: memory\negress: { allow_private: ["127.0.0.0/8"] }\n'));
  const proc = new FakeProcess();
  const logs = new LogCapture();
  installShutdown(proxy, { graceMs: 50, log: pino(logs), proc: proc as unknown as NodeJS.Process });
  const inflight = viaProxy(proxy.port, `${held.up.origin}/never`).then(
    () => 'answered',
    () => 'cut',
  );
  await held.first;
  proc.emit('SIGTERM', 'SIGTERM');
  t.equal(await inflight, 'cut');
  t.match(logs.text, /grace period over/);
  held.release();
  t.equal(await proc.exited, 0);
});

t.test('the CLI shuts down on SIGTERM after finishing the request in flight', async (t) => {
  const held = await heldUpstream();
  t.teardown(() => held.up.close());
  const dir = configDir('store: memory\negress: { allow_private: ["127.0.0.0/8"] }\n');
  const cli = fileURLToPath(new URL('../src/cli.ts', import.meta.url));
  const child = spawn(process.execPath, [...process.execArgv, cli, 'start', '--config', dir, '--port', '0'], {
    env: { ...process.env, CREDPROXY_ADMIN_TOKEN: ADMIN, CREDPROXY_SECRET_KEY: SECRET_KEY },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let out = '';
  const waitFor = (re: RegExp) =>
    new Promise<RegExpExecArray>((resolve, reject) => {
      const check = () => {
        const m = re.exec(out);
        if (m) {
          child.stdout.off('data', onData);
          resolve(m);
        }
      };
      const onData = (d: Buffer) => {
        out += d.toString();
        check();
      };
      child.stdout.on('data', onData);
      child.once('exit', () => reject(new Error(`the CLI exited; output:\n${out}`)));
      check();
    });
  const [, port] = await waitFor(/"url":"http:\/\/127\.0\.0\.1:(\d+)"/);
  const inflight = viaProxy(Number(port), `${held.up.origin}/slow`);
  await held.first;
  child.kill('SIGTERM');
  await waitFor(/shutting down/);
  held.release();
  const r = await inflight;
  t.equal(r.status, 200);
  t.equal(r.body.toString(), 'finished');
  t.equal(await exited, 0, 'exit code 0');
});
