import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import pino from 'pino';
import type { Settings } from '../../src/config/types.js';
import { openStore } from '../../src/store/open.js';
import type { Connection } from '../../src/store/types.js';
import { freshDatabase, pgUrl } from '../support/postgres.js';
import { recordKeys } from '../support/store-data.js';
import { SECRET_KEY } from '../support/servers.js';

/**
 * credproxy migrate killed mid-copy (SIGKILL: no chance to clean up) and run again, as an
 * operator would after a crash or a lost terminal: the second run completes, checks, and the
 * destination holds exactly what the source holds. The built bin, on the build npm test makes.
 */
const built = existsSync(join(process.cwd(), 'dist', 'src', 'cli.js'));
const log = pino({ level: 'silent' });
const env = { CREDPROXY_SECRET_KEY: SECRET_KEY, CREDPROXY_ADMIN_TOKEN: 'admin-token-for-migrate-cli' };
const PREFIX = `migcli-${process.pid}`;
const N = 3000;

interface Ran {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
  err: string;
}

function migrate(from: string, to: string, onErr?: (text: string, kill: () => void) => void): Promise<Ran> {
  const child = spawn(process.execPath, ['bin/credproxy.js', 'migrate', '--from', from, '--to', to, '--prefix', PREFIX], {
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
    onErr?.(err, () => child.kill('SIGKILL'));
  });
  return new Promise((resolve) => child.once('close', (code, signal) => resolve({ code, signal, out, err })));
}


t.test('a migration killed mid-copy is simply run again: the rerun completes and the destination equals the source', { skip: built ? false : 'dist/ is not built: run npm test (it builds first)', timeout: 180_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'credproxy-migrate-cli-'));
  const from = `sqlite:${join(dir, 'credproxy.db')}`;
  const to = pgUrl(await freshDatabase(t));
  const { store: src } = await openStore({ store: from, store_prefix: PREFIX } as Settings, env, log);
  const base: Connection = { entity: '', integration: 'stripe', scheme: 'api_key', params: {}, status: 'active', credentials: {}, created_at: 1, updated_at: 2 };
  for (let i = 0; i < N; i++) await src.put({ ...base, entity: `user-${i}`, credentials: { api_key: `sk_${i}` } });
  await src.put({ ...base, entity: 'user-0', label: 'work', credentials: { api_key: 'sk_work' } });
  await src.close();

  let killed = false;
  const first = await migrate(from, to, (err, kill) => {
    // After the first progress line some records are on the destination, most are not.
    if (!killed && /\d+ records copied/.test(err)) {
      killed = true;
      kill();
    }
  });
  t.equal(first.signal, 'SIGKILL', 'the first run was killed');
  const partial = (await recordKeys(to, PREFIX)).length;
  const all = await recordKeys(from, PREFIX);
  t.ok(partial > 0 && partial < all.length, `killed with ${partial} of ${all.length} records copied`);

  const second = await migrate(from, to);
  t.equal(second.code, 0, second.err);
  t.match(second.out, new RegExp(`copied ${N + 1} connections, 1 label indexes`), 'the rerun copies everything again (records are written whole, so a second write is harmless)');
  t.same(await recordKeys(to, PREFIX), all, 'the destination holds exactly the source records');
  const { store: dst } = await openStore({ store: to, store_prefix: PREFIX } as Settings, env, log);
  t.teardown(() => dst.close());
  t.equal((await dst.get('user-2999', 'stripe', { fresh: true }))?.credentials.api_key, 'sk_2999');
  t.same((await dst.list('user-0', ['stripe'])).map((c) => [c.label ?? '', c.credentials.api_key]), [['', 'sk_0'], ['work', 'sk_work']], 'labels listed through the copied index');
});
