import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import type { Settings } from '../config/types.js';
import { parseKey } from '../store/crypto.js';
import { Keyring, keyringFromEnv } from '../store/keyring.js';
import { migrateStore, MigrateError } from '../store/migrate.js';
import { dataDirOf, openBackend, type Backend } from '../store/open.js';
import { redactUrl } from '../store/redis.js';
import { EXIT, type CliIO } from './admin.js';
import { COMMAND_HELP } from './help.js';

const STORE = /^(sqlite:.+|rediss?:\/\/.+|postgres(ql)?:\/\/.+)$/;

const OPTIONS = {
  from: { type: 'string' },
  to: { type: 'string' },
  prefix: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/**
 * `credproxy migrate --from URL --to URL`: every record of one store copied to another
 * (src/store/migrate.ts), then checked. The storage key is CREDPROXY_SECRET_KEY, or the
 * secret.key beside an SQLite source; an SQLite destination gets the same key file, so a
 * proxy started on it opens what was copied.
 */
export async function runMigrateCommand(argv: string[], io: CliIO): Promise<number> {
  const help = COMMAND_HELP.migrate!;
  let values;
  try {
    ({ values } = parseArgs({ args: argv.slice(1), allowPositionals: false, options: OPTIONS }));
  } catch (err) {
    io.stderr(`credproxy migrate: ${(err as Error).message}\n\n${help}`);
    return EXIT.usage;
  }
  if (values.help) {
    io.stdout(help);
    return EXIT.ok;
  }
  const { from, to } = values;
  const prefix = values.prefix ?? 'credproxy';
  const usage = (msg: string) => {
    io.stderr(`credproxy migrate: ${msg}\n\n${help}`);
    return EXIT.usage;
  };
  if (!from || !to) return usage('--from and --to are both required');
  for (const [name, url] of [['--from', from], ['--to', to]] as const) {
    if (!STORE.test(url)) return usage(`${name} "${redactUrl(url)}" is not a store; expected sqlite:PATH, redis://…, or postgres://…`);
  }
  if (from === to) return usage('--from and --to are the same store');
  if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(prefix)) return usage(`--prefix "${prefix}" is not a store_prefix`);

  const at = (url: string) => ({ store: url, store_prefix: prefix }) as Settings;
  const log = pino({ level: 'silent' });
  let key: Keyring;
  try {
    key = storageKeyFor(io.env, dataDirOf(at(from)), dataDirOf(at(to)));
  } catch (err) {
    io.stderr(`credproxy migrate: ${(err as Error).message}\n`);
    return EXIT.api;
  }
  const opened: Backend[] = [];
  try {
    const src = await openBackend(from, prefix, log);
    opened.push(src);
    const dst = await openBackend(to, prefix, log);
    opened.push(dst);
    io.stderr(`copying ${redactUrl(from)} → ${redactUrl(to)} (prefix ${prefix})\n`);
    const report = await migrateStore(src, dst, key, { onProgress: (n) => io.stderr(`  ${n} records copied\n`) });
    const { connections, label_indexes, records } = report.copied;
    io.stdout(
      `copied ${connections} connections, ${label_indexes} label indexes, ${records} other records (entity tokens, links, counts); ` +
        `all present on the destination; ${report.sampled} connections decrypted on both sides and equal\n`,
    );
    if (/^(rediss?|postgres(ql)?):/.test(to) && !io.env.CREDPROXY_SECRET_KEY && !io.env.CREDPROXY_SECRET_KEYS && !io.env.CREDPROXY_SECRET_KEYS_FILE) {
      io.stdout(`instances on ${redactUrl(to)} need CREDPROXY_SECRET_KEY set to the key in ${join(dataDirOf(at(from)) ?? '.', 'secret.key')}\n`);
    }
    return EXIT.ok;
  } catch (err) {
    const msg = err instanceof MigrateError ? err.message : `${(err as Error).message}`;
    io.stderr(`credproxy migrate: ${msg}\n`);
    return EXIT.api;
  } finally {
    for (const b of opened) {
      await b.options.invalidation?.close();
      await b.options.onClose?.();
    }
  }
}

/**
 * The key the records are sealed with. Never generated here: a new key would open nothing.
 * An SQLite destination without CREDPROXY_SECRET_KEY gets the key file it will need, and one
 * that already holds a different key is refused (its proxy could not read the copy).
 */
function storageKeyFor(env: NodeJS.ProcessEnv, fromDir: string | undefined, toDir: string | undefined): Keyring {
  // A keyring is used as given: its keys live in the environment, never copied into a file.
  if (env.CREDPROXY_SECRET_KEYS || env.CREDPROXY_SECRET_KEYS_FILE) return keyringFromEnv(env)!;
  let text = env.CREDPROXY_SECRET_KEY;
  if (!text) {
    const path = fromDir && join(fromDir, 'secret.key');
    if (!path || !existsSync(path)) throw new Error('set CREDPROXY_SECRET_KEY to the storage key of the source store (the one its proxies use)');
    text = readFileSync(path, 'utf8').trim();
  }
  const key = parseKey(text);
  if (!key) throw new Error('the storage key must be 32 bytes, as base64 or hex');
  if (toDir && !env.CREDPROXY_SECRET_KEY) {
    const path = resolve(toDir, 'secret.key');
    const { value } = existsSync(path) ? { value: readFileSync(path, 'utf8').trim() } : writeKey(path, text);
    const there = parseKey(value);
    if (!there || !there.equals(key)) throw new Error(`${path} holds another storage key: the destination's proxy could not read the copy`);
  }
  return Keyring.single(key);
}

function writeKey(path: string, text: string): { value: string } {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  // 'wx': never over a key file that appeared meanwhile; 0600 like every generated secret.
  writeFileSync(path, `${text}\n`, { mode: 0o600, flag: 'wx' });
  return { value: text };
}
