import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import t from 'tap';
import { BIN, clientRig, NEEDS_BUILD } from '../support/clients.js';
import { ADMIN, configDir } from '../support/servers.js';

/**
 * What `credproxy run` and `env` do around the command: absolute paths from any working
 * directory, no CA created behind the server's back, NO_PROXY that cannot route around
 * credproxy, and the run's token revoked however the command ends.
 */
const opts = { skip: NEEDS_BUILD, timeout: 240_000 };

function bin(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd, env: { PATH: process.env.PATH, HOME: cwd, ...env } }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

t.test('the same --config from another working directory: one CA, absolute paths in everything env prints', opts, async (t) => {
  const rig = await clientRig(t);
  const elsewhere = mkdtempSync(join(tmpdir(), 'credproxy-cwd-'));
  const ca = await bin(['ca', '--config', rig.dir], elsewhere);
  t.equal(ca.code, 0, ca.stderr);
  t.equal(ca.stdout.trim(), join(rig.dir, 'ca', 'ca.crt'), "ca_dir: ./ca is the config folder's, not the working directory's");
  t.notOk(existsSync(join(elsewhere, 'ca')), 'nothing was created where the command ran');

  const env = await bin(['env', '--entity', 'alice', '--config', rig.dir, '--url', rig.proxy.url], elsewhere, { CREDPROXY_ADMIN_TOKEN: ADMIN });
  t.equal(env.code, 0, env.stderr);
  const vars = Object.fromEntries([...env.stdout.matchAll(/^export (\w+)='([^']*)'$/gm)].map((m) => [m[1]!, m[2]!]));
  for (const name of ['SSL_CERT_FILE', 'NODE_EXTRA_CA_CERTS', 'REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE', 'GIT_SSL_CAINFO', 'PIP_CERT', 'WGETRC']) {
    t.ok(vars[name] && isAbsolute(vars[name]) && existsSync(vars[name]), `${name} is an absolute path that exists: ${vars[name]}`);
  }
  t.equal(vars.SSL_CERT_FILE, join(rig.dir, 'ca', 'bundle.pem'));
  t.match(readFileSync(vars.WGETRC!, 'utf8'), `ca_certificate = ${join(rig.dir, 'ca', 'bundle.pem')}`);
  t.match(vars.JAVA_TOOL_OPTIONS, `-Djavax.net.ssl.trustStore=${join(rig.dir, 'ca', 'bundle.p12')}`);
  t.match(vars.NODE_OPTIONS, /--import "\/[^"]+\/bin\/fetch-proxy\.mjs"/, 'the preload by absolute path');
  t.equal(vars.GIT_CONFIG_KEY_0, 'http.proxyAuthMethod', 'env (no relay): git sends the proxy user with its CONNECT');
});

t.test("the admin token the server generated is found in the config's data folder, from any working directory", opts, async (t) => {
  const rig = await clientRig(t);
  // The agent side of the same deployment: an embedded store whose folder holds admin.token.
  const dir = configDir(`store: sqlite:./state/credproxy.db\ntls: { ca_dir: "${join(rig.dir, 'ca')}" }\n`, { api: readFileSync(join(rig.dir, 'integrations', 'api.yaml'), 'utf8') });
  mkdirSync(join(dir, 'state'));
  writeFileSync(join(dir, 'state', 'admin.token'), `${ADMIN}\n`);
  const elsewhere = mkdtempSync(join(tmpdir(), 'credproxy-cwd-'));
  const env = await bin(['env', '--entity', 'alice', '--config', dir, '--url', rig.proxy.url], elsewhere);
  t.equal(env.code, 0, env.stderr);
  t.match(env.stdout, /^# entity token tok_/m, 'a token was issued with the admin token from state/admin.token');
});

t.test('no CA yet: ca, env and run say where they looked and create nothing', opts, async (t) => {
  const dir = configDir('tls:\n  ca_dir: ./ca\n', { api: 'hosts: [api.example.test]\nauth: { type: bearer }\n' });
  const elsewhere = mkdtempSync(join(tmpdir(), 'credproxy-cwd-'));
  for (const args of [['ca', '--config', dir], ['env', '--entity', 'alice', '--config', dir], ['run', '--entity', 'alice', '--config', dir, '--', 'true']]) {
    const r = await bin(args, elsewhere, { CREDPROXY_ADMIN_TOKEN: ADMIN });
    t.not(r.code, 0, `${args[0]} fails`);
    t.match(r.stderr, `no CA in ${join(dir, 'ca')}`, `${args[0]} names the folder it looked in`);
    t.match(r.stderr, /credproxy ca --create/, 'and how to create one');
  }
  t.notOk(existsSync(join(dir, 'ca', 'ca.crt')), 'no CA was created');
  t.notOk(existsSync(join(elsewhere, 'data')), 'nor a data folder where they ran');
  const create = await bin(['ca', '--create', '--config', dir], elsewhere);
  t.equal(create.code, 0, create.stderr);
  t.equal(create.stdout.trim(), join(dir, 'ca', 'ca.crt'));
  t.match(create.stderr, /created a new local CA/);
});

t.test('NO_PROXY: an inherited entry covering an integration host is left out, and stderr says so', opts, async (t) => {
  const rig = await clientRig(t);
  const r = await rig.run(process.execPath, ['-e', 'console.log(process.env.NO_PROXY + "|" + process.env.no_proxy)'], { NO_PROXY: 'internal.example,127.0.0.1,localhost' });
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout.trim(), 'internal.example|internal.example', 'the other entries stay');
  t.match(r.stderr, /NO_PROXY entry "127\.0\.0\.1" would send integration host 127\.0\.0\.1 around credproxy/);
  t.match(r.stderr, /NO_PROXY entry "localhost"/, 'a loopback name covers a loopback integration for Java and axios');
  const dflt = await rig.run(process.execPath, ['-e', 'console.log(process.env.NO_PROXY)']);
  t.equal(dflt.stdout.trim(), '', 'the default list loses its loopback entries for a loopback integration');
  t.equal(dflt.stderr, '', 'silently: the user did not choose them');
});

/** `credproxy run` with a command that records its pid and its token's absence, then waits. */
function startRun(rig: Awaited<ReturnType<typeof clientRig>>, script: string) {
  const file = join(rig.work, `child-${Math.random().toString(36).slice(2)}.cjs`);
  writeFileSync(file, script);
  const child = spawn(process.execPath, [BIN, 'run', '--entity', 'alice', '--token', '--config', rig.dir, '--url', rig.proxy.url, '--', process.execPath, file], {
    cwd: rig.work,
    env: { PATH: process.env.PATH, HOME: rig.work, CREDPROXY_ADMIN_TOKEN: ADMIN, CREDPROXY_SECRET_KEY: 'c2VjcmV0', PIDFILE: `${file}.pid` },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((done) => child.on('close', (code, signal) => done({ code, signal, stderr })));
  const started = (async () => {
    while (!existsSync(`${file}.pid`) || readFileSync(`${file}.pid`, 'utf8') === '') await new Promise((r) => setTimeout(r, 50));
    return JSON.parse(readFileSync(`${file}.pid`, 'utf8')) as { pid: number; env: Record<string, string> };
  })();
  return { run: child, exited, started };
}

const WAITER = `require('fs').writeFileSync(process.env.PIDFILE, JSON.stringify({ pid: process.pid, env: process.env }));
process.on('SIGINT', () => process.exit(130)); process.on('SIGTERM', () => process.exit(143));
setInterval(() => {}, 1000);`;

async function revoked(rig: Awaited<ReturnType<typeof clientRig>>): Promise<boolean> {
  const issued = [...rig.proxy.logs.text.matchAll(/"token_id":"(tok_[^"]+)","msg":"entity token issued"/g)].map((m) => m[1]);
  const gone = [...rig.proxy.logs.text.matchAll(/"token_id":"(tok_[^"]+)","msg":"entity token revoked"/g)].map((m) => m[1]);
  return issued.length > 0 && issued.every((id) => gone.includes(id));
}

for (const [how, act] of [
  ['SIGTERM to run', (run: { kill(s: NodeJS.Signals): void }) => run.kill('SIGTERM')],
  ['SIGINT to run', (run: { kill(s: NodeJS.Signals): void }) => run.kill('SIGINT')],
  ['the command killed (SIGKILL)', (_run: unknown, pid: number) => process.kill(pid, 'SIGKILL')],
] as const) {
  t.test(`--token: the token is revoked when the run ends by ${how}; the command never held it`, opts, async (t) => {
    const rig = await clientRig(t);
    const { run, exited, started } = startRun(rig, WAITER);
    const { pid, env } = await started;
    t.notMatch(JSON.stringify(env), /cpx_/, 'no entity token in the command’s environment');
    for (const name of ['CREDPROXY_ADMIN_TOKEN', 'CREDPROXY_SECRET_KEY']) t.equal(env[name], undefined, `no ${name}`);
    act(run, pid);
    const end = await exited;
    t.equal(end.code, how.includes('SIGKILL') ? 137 : how.includes('SIGINT') ? 130 : 143, `run exits as the command did: ${end.stderr}`);
    t.ok(await revoked(rig), 'the token was revoked');
  });
}
