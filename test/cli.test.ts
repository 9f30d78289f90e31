import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { pollUntil } from './support/poll.js';
import { configDir } from './support/servers.js';

/** The CLI as users run it: `node bin/credproxy.js` (built by `npm test` before tap runs). */
const BIN = fileURLToPath(new URL('../bin/credproxy.js', import.meta.url));

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], env: NodeJS.ProcessEnv = {}, onStdout?: (text: string, kill: () => void) => void): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, CREDPROXY_CONFIG: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
      onStdout?.(stdout, () => child.kill('SIGTERM'));
    });
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

t.test('validate: exit 0 and a summary for a good config', async (t) => {
  const dir = configDir('store: memory\n', { a: 'hosts: [a.example]\nauth: { type: bearer }\n' });
  const r = await run(['validate', '--config', dir]);
  t.equal(r.code, 0);
  t.equal(r.stdout, `${dir}: ok (1 integration)\n`);
  const viaEnv = await run(['validate'], { CREDPROXY_CONFIG: dir });
  t.equal(viaEnv.code, 0, 'CREDPROXY_CONFIG names the folder');
});

t.test('validate: exit 1 and every problem as file:line: message', async (t) => {
  const dir = configDir('passthrough: maybe\nadmin_token: ${NOPE_NOT_SET}\n', {
    a: 'hosts: [a.example]\nauth:\n  type: bearer\n  bogus: 1\n',
    b: 'hosts: [b.example\n',
  });
  const r = await run(['validate', '--config', dir], { NOPE_NOT_SET: undefined });
  t.equal(r.code, 1);
  const lines = r.stderr.trim().split('\n');
  t.ok(lines.every((l) => /^\/.+\.yaml:\d+: .+/.test(l)), r.stderr);
  t.match(r.stderr, `${dir}/credproxy.yaml:1: passthrough: "maybe" is not allowed`);
  t.match(r.stderr, `${dir}/credproxy.yaml:2: admin_token: environment variable NOPE_NOT_SET is not set`);
  t.match(r.stderr, `${dir}/integrations/a.yaml:4: auth.bogus: unknown key`);
  t.match(r.stderr, new RegExp(`${dir}/integrations/b\\.yaml:\\d+: `));
  t.equal(lines.length, 4, 'all of them, in one run');
});

t.test('usage errors exit 2; --help exits 0', async (t) => {
  const help = await run(['--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /Usage:/);
  t.equal((await run([])).code, 0, 'no command shows the help');
  for (const args of [['frobnicate'], ['start', '--port', 'eighty'], ['start', '--log-format', 'xml'], ['validate', '--bogus']]) {
    const r = await run(args);
    t.equal(r.code, 2, args.join(' '));
    t.not(r.stderr, '');
  }
  const missing = await run(['start', '--config', '/nonexistent/credproxy']);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /config folder does not exist/);
  const bad = await run(['start', '--config', configDir('passthrough: maybe\n')]);
  t.equal(bad.code, 1);
  t.match(bad.stderr, /the config does not validate:\n.*credproxy\.yaml:1: /);
  const badKey = await run(['start', '--config', configDir('store: memory\n'), '--port', '0'], { CREDPROXY_SECRET_KEY: 'short' });
  t.equal(badKey.code, 1);
  t.match(badKey.stderr, /CREDPROXY_SECRET_KEY must be 32 bytes/);
});

t.test('start: listens, answers /healthz, stops cleanly on SIGTERM', async (t) => {
  const dir = configDir('store: memory\nlisten: 127.0.0.1:0\n');
  let healthz = 0;
  let asked = false;
  const r = await run(['start', '--config', dir, '--log-format', 'json'], { CREDPROXY_ADMIN_TOKEN: 'a'.repeat(24), CREDPROXY_SECRET_KEY: '' }, (out, kill) => {
    const m = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(out);
    if (!m || asked) return;
    asked = true;
    void fetch(`${m[1]}/healthz`).then(
      (res) => {
        healthz = res.status;
        kill();
      },
      () => kill(),
    );
  });
  t.equal(healthz, 200);
  t.equal(r.code, 0, 'exit 0 after SIGTERM');
  t.match(r.stdout, /"msg":"credproxy listening"/);
  t.notMatch(r.stdout + r.stderr, /a{24}/, 'the admin token is not printed when it was given');
});

t.test("start: credproxy.yaml's log.level applies, LOG_LEVEL overrides it", async (t) => {
  const dir = configDir('store: memory\nlisten: 127.0.0.1:0\nlog: { level: warn }\n');
  const port = await new Promise<number>((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
  const env: NodeJS.ProcessEnv = { ...process.env, CREDPROXY_CONFIG: '', CREDPROXY_ADMIN_TOKEN: 'a'.repeat(24), CREDPROXY_SECRET_KEY: '' };
  delete env.LOG_LEVEL;
  const child = spawn(process.execPath, [BIN, 'start', '--config', dir, '--port', String(port)], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  // Nothing at info level is printed, so the test asks until the proxy answers.
  let healthz = 0;
  await pollUntil(async () => (healthz = await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.status, () => 0)) !== 0, 20_000);
  t.equal(healthz, 200);
  child.kill('SIGTERM');
  t.equal(await exited, 0);
  t.notMatch(stdout, /credproxy listening/, 'info lines are below log.level: warn');

  const loud = await run(['start', '--config', dir, '--log-format', 'json'], { CREDPROXY_ADMIN_TOKEN: 'a'.repeat(24), CREDPROXY_SECRET_KEY: '', LOG_LEVEL: 'info' }, (out, kill) => {
    if (out.includes('credproxy listening')) kill();
  });
  t.match(loud.stdout, /"msg":"credproxy listening"/, 'LOG_LEVEL=info wins over the file');
});
