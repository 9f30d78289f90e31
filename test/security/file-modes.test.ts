import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { CliIO } from '../../src/cli/admin.js';
import { runAgentCommand } from '../../src/cli/agent.js';
import { pollUntil } from '../support/poll.js';
import { configDir, startProxy, startUpstream, viaProxy } from '../support/servers.js';

/** Every file and folder under `dir`, with its permission bits. */
function modes(dir: string): Array<{ path: string; dir: boolean; mode: number }> {
  const out: Array<{ path: string; dir: boolean; mode: number }> = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const st = statSync(path);
    out.push({ path, dir: st.isDirectory(), mode: st.mode & 0o777 });
    if (st.isDirectory()) out.push(...modes(path));
  }
  return out;
}

t.test('a real start creates every file under the data folder 0600 and every folder 0700', async (t) => {
  // The usual umask: the modes must come from credproxy, not from the test's environment.
  process.umask(0o022);
  const up = await startUpstream();
  t.teardown(() => up.close());
  const data = join(mkdtempSync(join(tmpdir(), 'credproxy-modes-')), 'data');
  const integration = `hosts: ["127.0.0.1:${up.port}"]\nupstream: http\nauth: { type: bearer }\n`;
  const dir = configDir(
    `store: "sqlite:${join(data, 'credproxy.db')}"\ntls: { intercept: true, ca_dir: "${join(data, 'ca')}" }\naudit: { file: "${join(data, 'audit', 'audit.log')}" }\n`,
    { demo: integration },
  );
  // No key and no admin token given: both are generated into the data folder.
  const proxy = await startProxy(dir, { env: { CREDPROXY_ADMIN_TOKEN: '', CREDPROXY_SECRET_KEY: '' } });
  const admin = readFileSync(join(data, 'admin.token'), 'utf8').trim();
  const put = await fetch(`${proxy.url}/api/entities/alice/connections/demo`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
    body: JSON.stringify({ credentials: { token: 'modes-test-token-1234' } }),
  });
  t.equal(put.status, 200);
  t.equal((await viaProxy(proxy.port, `${up.origin}/x`, { headers: { 'x-entity-id': 'alice' } })).status, 200);
  // `credproxy env` writes the client bundle into ca_dir.
  const io: CliIO = { stdout: () => undefined, stderr: (s) => t.comment(s), env: { PATH: process.env.PATH }, readStdin: async () => '' };
  t.equal(await runAgentCommand(['env', '--entity', 'alice', '--config', dir, '--url', proxy.url], io), 0);
  // SQLite's -wal and -shm exist while the store is open (it removes them on close).
  const running = readdirSync(data).filter((n) => /-(wal|shm)$/.test(n));
  t.ok(running.length > 0, `SQLite keeps side files while open: ${running.join(', ')}`);
  for (const n of running) t.equal(statSync(join(data, n)).mode & 0o777, 0o600, `${n} is 0600 while the server runs`);
  await proxy.close();

  const found = modes(data);
  const names = found.map((f) => f.path.slice(data.length + 1));
  for (const want of ['credproxy.db', 'secret.key', 'admin.token', 'ca/ca.key', 'ca/ca.crt', 'ca/bundle.pem', 'audit/audit.log']) {
    t.ok(names.some((n) => n === want || n.startsWith(`${want}`)), `${want} was created (${names.join(', ')})`);
  }
  t.equal(statSync(data).mode & 0o777, 0o700, 'the data folder is 0700');
  for (const f of found) t.equal(f.mode, f.dir ? 0o700 : 0o600, `${f.path.slice(data.length + 1)} is ${f.dir ? '0700' : '0600'}`);
});

t.test('files an older credproxy left open to others are tightened on the next start', async (t) => {
  process.umask(0o022);
  const data = join(mkdtempSync(join(tmpdir(), 'credproxy-modes-')), 'data');
  const dir = configDir(`store: "sqlite:${join(data, 'credproxy.db')}"\ntls: { intercept: true, ca_dir: "${join(data, 'ca')}" }\n`);
  let proxy = await startProxy(dir);
  await proxy.close();
  for (const f of ['credproxy.db', 'ca/ca.crt']) chmodSync(join(data, f), 0o644);
  proxy = await startProxy(dir);
  t.equal(statSync(join(data, 'credproxy.db-wal')).mode & 0o777, 0o600, 'SQLite gives the -wal the database file\'s (tightened) mode');
  await proxy.close();
  for (const f of ['credproxy.db', 'ca/ca.crt']) t.equal(statSync(join(data, f)).mode & 0o777, 0o600, `${f} is 0600 again`);
});

const BIN = join(process.cwd(), 'bin', 'credproxy.js');
const built = existsSync(join(process.cwd(), 'dist', 'src', 'cli.js'));

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

t.test('`credproxy start` (the real binary) leaves nothing under the data folder open to others', { skip: built ? false : 'dist/ is not built' }, async (t) => {
  const data = join(mkdtempSync(join(tmpdir(), 'credproxy-modes-')), 'data');
  const dir = configDir(`store: "sqlite:${join(data, 'credproxy.db')}"\ntls: { ca_dir: "${join(data, 'ca')}" }\n`);
  const port = await freePort();
  const child = spawn(process.execPath, [BIN, 'start', '--config', dir, '--port', String(port), '--host', '127.0.0.1'], {
    env: { PATH: process.env.PATH },
    stdio: 'ignore',
  });
  t.teardown(() => child.kill('SIGKILL'));
  const up = await pollUntil(async () => (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined))?.status === 200, 20_000);
  t.ok(up, 'the server started');
  for (const f of modes(data)) t.equal(f.mode, f.dir ? 0o700 : 0o600, `${f.path.slice(data.length + 1)} while running`);
  t.ok(modes(data).some((f) => f.path.endsWith('-wal')), 'the SQLite side files are among them');
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
});
