import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { makeTestCa } from './certs.js';
import { ADMIN, configDir, startProxy, startUpstream, type Seen, type TestProxy } from './servers.js';

/**
 * The end-to-end rig of the client tests (test/cli/clients-*.test.ts): an HTTPS upstream on
 * loopback that an integration owns (credproxy intercepts it), the real `bin/credproxy.js run`
 * started from another working directory, and the client under test as its command, as a user
 * would type it. The upstream records what reached it: the injected key, and never a `cpx_`.
 */
export const BIN = join(process.cwd(), 'bin', 'credproxy.js');
export const BUILT = existsSync(join(process.cwd(), 'dist', 'src', 'cli.js'));
export const NEEDS_BUILD = BUILT ? false : 'dist/ is not built: run npm test (it builds first)';
/** What the connection holds; the upstream must see exactly this. */
export const REAL_KEY = 'sk-real-alice-0123456789';

export function works(cmd: string, args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore', timeout: 60_000 });
    return true;
  } catch {
    return false;
  }
}

/**
 * A missing client fails the test, naming the Debian package that brings it (.ci/run installs
 * them): a client table that is green because nothing ran would prove nothing.
 */
export function requireTool(t: Test, present: boolean, what: string, debianPackage: string): boolean {
  if (!present) t.fail(`${what} is not installed: apt-get install ${debianPackage} (.ci/run does this in CI)`);
  return present;
}

/** /usr/bin/python3 when it has the Debian packages (a pyenv python3 on PATH may not). */
export function pythonWith(modules: string[]): string | undefined {
  const probe = ['-c', modules.map((m) => `import ${m}`).join('; ')];
  return ['/usr/bin/python3', 'python3'].find((py) => works(py, probe));
}

export interface Result {
  code: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface ClientRig {
  upstream: Awaited<ReturnType<typeof startUpstream>>;
  proxy: TestProxy;
  /** the config folder given to --config */
  dir: string;
  /** a scratch folder for the test's files, and the working directory of `run` (not the config's) */
  work: string;
  url: string;
  /** `credproxy run --entity alice --config DIR --url … -- cmd args`, from `work` */
  run(cmd: string, args: string[], env?: NodeJS.ProcessEnv, runArgs?: string[]): Promise<Result>;
  /** every request the upstream got carried the real key and no cpx_ anywhere */
  clean(t: Test, header?: string, value?: string): void;
}

export interface RigOptions {
  handler?: (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;
  /** the integration's auth and inject; default a bearer token */
  auth?: string;
  credentials?: Record<string, string>;
  /** host name and address the upstream listens on; default 127.0.0.1 */
  host?: string;
  address?: string;
}

export async function clientRig(t: Test, opts: RigOptions = {}): Promise<ClientRig> {
  const ca = makeTestCa('client rig upstream CA');
  const host = opts.host ?? '127.0.0.1';
  const upstream = await startUpstream(opts.handler, { tls: ca.issue([host, '127.0.0.1', 'localhost']), host: opts.address ?? host });
  t.teardown(() => upstream.close());
  const dir = configDir('', {
    api: `hosts: ["${host}:${upstream.port}"]\n${opts.auth ?? 'auth: { type: bearer }'}\nplaceholder_env: API_KEY\n`,
  });
  // Relative paths, as users write them: resolved against the config folder, not run's cwd.
  writeFileSync(join(dir, 'credproxy.yaml'), `store: memory\ntls:\n  ca_dir: ./ca\n  upstream_ca: ./${ca.write(dir).slice(dir.length + 1)}\n`);
  const proxy = await startProxy(dir);
  t.teardown(() => proxy.close());
  const put = await proxy.connect('alice', 'api', { credentials: opts.credentials ?? { token: REAL_KEY } });
  if (!put.ok) throw new Error(`storing the connection failed: ${put.status} ${await put.text()}`);
  const work = mkdtempSync(join(tmpdir(), 'credproxy-client-'));
  const run = (cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, runArgs: string[] = []) =>
    new Promise<Result>((resolve) => {
      const child = spawn(process.execPath, [BIN, 'run', '--entity', 'alice', '--config', dir, '--url', proxy.url, ...runArgs, '--', cmd, ...args], {
        cwd: work,
        // Only what a user's shell would have: no proxy or CA variable of the machine leaks in.
        env: { PATH: process.env.PATH, HOME: work, LANG: 'C.UTF-8', CREDPROXY_ADMIN_TOKEN: ADMIN, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('close', (code, signal) => resolve({ code: code ?? -1, signal, stdout, stderr }));
    });
  const clean = (t: Test, header = 'authorization', value = `Bearer ${REAL_KEY}`) => {
    t.ok(upstream.seen.length > 0, 'requests reached the upstream');
    t.ok(
      upstream.seen.every((s: Seen) => s.headers[header] === value),
      `every request at the upstream carried the injected ${header}`,
    );
    const all = JSON.stringify(upstream.seen.map((s) => [s.url, s.rawHeaders, s.body.toString('latin1')]));
    t.notMatch(all, /cpx_/, 'no cpx_ value ever reached the upstream');
    t.notMatch(all, /credproxy-placeholder/, 'nor the placeholder');
    t.notMatch(all, /proxy-authorization/i, 'nor a Proxy-Authorization');
  };
  return { upstream, proxy, dir, work, url: `https://${host}:${upstream.port}`, run, clean };
}
