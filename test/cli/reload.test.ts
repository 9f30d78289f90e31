import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import t from 'tap';
import { runAdminCommand } from '../../src/cli/admin.js';
import { ADMIN, configDir, SECRET_KEY } from '../support/servers.js';
import { Waiter } from '../support/waiter.js';

const built = existsSync(join(process.cwd(), 'dist', 'src', 'cli.js'));

async function integrationNames(url: string): Promise<string[]> {
  let out = '';
  const code = await runAdminCommand(['integrations', 'list', '--json', '--url', url], {
    stdout: (s) => (out += s),
    stderr: () => {},
    env: { CREDPROXY_ADMIN_TOKEN: ADMIN },
    readStdin: async () => '',
  });
  if (code !== 0) throw new Error(`integrations list exited ${code}`);
  return (JSON.parse(out) as { integrations: Array<{ name: string }> }).integrations.map((i) => i.name);
}

t.test('credproxy start reloads on file changes and on SIGHUP', { skip: built ? false : 'dist/ is not built: run npm test (it builds first)' }, async (t) => {
  const dir = configDir('store: memory\n', { demo: 'hosts: ["127.0.0.1:9"]\nupstream: http\nauth: { type: bearer }\n' });
  const child = spawn(process.execPath, ['bin/credproxy.js', 'start', '--config', dir, '--port', '0', '--host', '127.0.0.1', '--log-format', 'json'], {
    env: { PATH: process.env.PATH, CREDPROXY_ADMIN_TOKEN: ADMIN, CREDPROXY_SECRET_KEY: SECRET_KEY },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const lines = new Waiter<Record<string, unknown>>();
  createInterface({ input: child.stdout }).on('line', (l) => {
    try {
      lines.push(JSON.parse(l) as Record<string, unknown>);
    } catch {
      // not a log line
    }
  });
  const listening = await lines.until((l) => l.msg === 'credproxy listening');
  const url = String(listening.url);
  t.same(await integrationNames(url), ['demo']);

  writeFileSync(join(dir, 'integrations', 'second.yaml'), 'hosts: ["127.0.0.1:10"]\nupstream: http\nauth: { type: bearer }\n');
  const reloaded = await lines.until((l) => l.msg === 'config reloaded' && (l.added as string[]).includes('second'));
  t.equal(reloaded.trigger, 'file change');
  t.same(await integrationNames(url), ['demo', 'second']);

  child.kill('SIGHUP');
  const hup = await lines.until((l) => l.msg === 'config unchanged' && l.trigger === 'SIGHUP');
  t.same(hup.integrations, ['demo', 'second'], 'SIGHUP reloads and the process keeps running');

  writeFileSync(join(dir, 'integrations', 'second.yaml'), 'hosts: ["127.0.0.1:10"]\nauth: { type: nope }\n');
  const failed = await lines.until((l) => l.msg !== undefined && String(l.msg).startsWith('config reload failed'));
  t.match(failed.problems, [/second\.yaml:2: auth\.type: "nope" is not allowed/]);
  t.same(await integrationNames(url), ['demo', 'second'], 'the last good config stays live');

  child.kill('SIGTERM');
  t.equal(await exited, 0);
});
