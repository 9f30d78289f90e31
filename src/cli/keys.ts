import { SCHEMES } from '../auth/registry.js';
import { randomBytes } from 'node:crypto';
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { ConfigError, loadConfig } from '../config/load.js';
import { ExportError, collectExport, importPayload, openExport, sealExport } from '../store/export.js';
import { checkKeyring } from '../store/key-check.js';
import { KeyringError, keyringFromEnv, type Keyring } from '../store/keyring.js';
import { KeyvConnectionStore } from '../store/keyv-store.js';
import { dataDirOf, openBackend, storageKeyring, type Backend } from '../store/open.js';
import { PRIVATE_FILE } from '../store/private-files.js';
import { rekeyStore, type RekeyReport } from '../store/rekey.js';
import { redactUrl } from '../store/redis.js';
import { EXIT, type CliIO } from './admin.js';
import { COMMAND_HELP } from './help.js';

/** What the store commands need beyond CliIO: a terminal for the progress bar and the passphrase prompt. */
export interface StoreCommandIO extends CliIO {
  /** stderr is a terminal: draw a progress bar rather than print lines */
  isTTY?: boolean;
  /** asks for a secret without echoing it; absent when stdin is not a terminal */
  promptSecret?: (question: string) => Promise<string>;
  /** rekey stops taking records when this aborts (SIGINT) */
  signal?: AbortSignal;
}

const OPTIONS = {
  config: { type: 'string' },
  out: { type: 'string' },
  limit: { type: 'string' },
  'progress-every': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const STORE_COMMANDS = ['rekey', 'export', 'import'] as const;
export const isStoreCommand = (argv: string[]) => (STORE_COMMANDS as readonly string[]).includes(argv[0] ?? '');

class Usage extends Error {}

interface Opened {
  keyring: Keyring;
  backend: Backend;
  store: KeyvConnectionStore;
  shown: string;
}

/**
 * The store of the config folder, with the keyring a proxy on it would use. Never generates
 * a key for a shared store (it would open nothing), and refuses a keyring that opens none of
 * a sample of stored connections (the same check as at start).
 */
async function openFor(configDir: string, io: CliIO): Promise<Opened> {
  const { settings } = loadConfig(configDir, { schemes: SCHEMES });
  const log = pino({ level: 'silent' });
  const dataDir = dataDirOf(settings);
  if (!dataDir && !keyringFromEnv(io.env)) throw new KeyringError('set CREDPROXY_SECRET_KEY or CREDPROXY_SECRET_KEYS to the storage keys of the proxies on this store');
  const keyring = storageKeyring(io.env, dataDir, log);
  const backend = await openBackend(settings.store, settings.store_prefix, log);
  try {
    await checkKeyring(backend, keyring, log);
  } catch (err) {
    await closeBackend(backend);
    throw err;
  }
  return { keyring, backend, store: new KeyvConnectionStore(backend.keyv, keyring, backend.options), shown: `${redactUrl(settings.store)} (prefix ${settings.store_prefix})` };
}

async function closeBackend(b: Backend): Promise<void> {
  await b.options.invalidation?.close();
  await b.options.onClose?.();
}

const count = (text: string | undefined, name: string, def: number) => {
  if (text === undefined) return def;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Usage(`${name} "${text}" is not a positive whole number`);
  return n;
};

/** `credproxy rekey | export | import`: see COMMAND_HELP. */
export async function runStoreCommand(argv: string[], io: StoreCommandIO): Promise<number> {
  const command = argv[0] as (typeof STORE_COMMANDS)[number];
  const help = COMMAND_HELP[command]!;
  let values;
  let positionals;
  try {
    ({ values, positionals } = parseArgs({ args: argv.slice(1), allowPositionals: command === 'import', options: OPTIONS }));
  } catch (err) {
    io.stderr(`credproxy ${command}: ${(err as Error).message}\n\n${help}`);
    return EXIT.usage;
  }
  if (values.help) {
    io.stdout(help);
    return EXIT.ok;
  }
  const configDir = resolve(values.config ?? io.env.CREDPROXY_CONFIG ?? 'config');
  let opened: Opened | undefined;
  try {
    if (command !== 'rekey' && (values.limit || values['progress-every'])) throw new Usage('--limit and --progress-every are options of rekey');
    if (command !== 'export' && values.out) throw new Usage('--out is an option of export');
    if (command === 'export' && !values.out) throw new Usage('--out FILE is required');
    if (command === 'import' && positionals.length !== 1) throw new Usage('give the export file to import: credproxy import FILE');
    const limit = values.limit === undefined ? undefined : count(values.limit, '--limit', 0);
    const every = count(values['progress-every'], '--progress-every', 100);
    // The passphrase before the store: nothing is opened for a run that cannot go on.
    const passphrase = command === 'rekey' ? '' : await passphraseOf(io, command === 'export');
    const text = command === 'import' ? readFileSync(positionals[0]!, 'utf8') : '';
    const file = command === 'import' ? await openExport(text, passphrase) : undefined;
    opened = await openFor(configDir, io);
    if (command === 'rekey') return await rekey(opened, io, limit, every);
    if (command === 'export') {
      const payload = await collectExport(opened.store, opened.backend);
      const out = resolve(values.out!);
      writePrivate(out, await sealExport(payload, passphrase));
      io.stdout(
        `exported ${payload.connections.length} connections, ${payload.sealed.length} sealed with keys this keyring lacks (kept sealed), ` +
          `${payload.label_indexes.length} label indexes, ${payload.entity_tokens.length} entity token records from ${opened.shown} to ${out} (mode 0600, encrypted to the passphrase)\n`,
      );
      return EXIT.ok;
    }
    const r = await importPayload(opened.store, opened.backend, file!.payload);
    io.stdout(
      `imported ${positionals[0]} (format version ${file!.version}, made ${file!.created_at}) into ${opened.shown}: ` +
        `connections ${r.restored.connections} restored, ${r.kept.connections} kept (the store's copy is as new or newer by updated_at); ` +
        `sealed records ${r.restored.sealed} restored, ${r.kept.sealed} kept; entity token records ${r.restored.entity_tokens} restored, ${r.kept.entity_tokens} already there, ${r.expired} expired; ` +
        `${r.label_indexes} label indexes\n`,
    );
    return EXIT.ok;
  } catch (err) {
    if (err instanceof Usage) {
      io.stderr(`credproxy ${command}: ${err.message}\n\n${help}`);
      return EXIT.usage;
    }
    const known = err instanceof KeyringError || err instanceof ExportError || err instanceof ConfigError || (err as NodeJS.ErrnoException).code !== undefined || /^store /.test((err as Error).message);
    if (!known) throw err;
    io.stderr(`credproxy ${command}: ${(err as Error).message}\n`);
    return EXIT.api;
  } finally {
    if (opened) await opened.store.close();
  }
}

async function passphraseOf(io: StoreCommandIO, confirm: boolean): Promise<string> {
  let p = io.env.CREDPROXY_EXPORT_PASSPHRASE;
  if (p === undefined) {
    if (!io.promptSecret) throw new ExportError('set CREDPROXY_EXPORT_PASSPHRASE, or run on a terminal to be asked for the passphrase');
    p = await io.promptSecret('export passphrase: ');
    if (confirm && (await io.promptSecret('again: ')) !== p) throw new ExportError('the two passphrases differ');
  }
  if (p === '') throw new ExportError('the passphrase is empty; an export must be encrypted to a passphrase');
  return p;
}

/** Written to a new 0600 file then renamed over FILE, so a reader never sees half of it and it is never readable by others. */
function writePrivate(path: string, text: string): void {
  const tmp = join(dirname(path), `.${randomBytes(6).toString('hex')}.credproxy-export.tmp`);
  try {
    writeFileSync(tmp, text, { mode: PRIVATE_FILE, flag: 'wx' });
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

async function rekey({ keyring, backend, store, shown }: Opened, io: StoreCommandIO, limit: number | undefined, every: number): Promise<number> {
  io.stderr(`re-sealing the connections of ${shown} with key "${keyring.newest.id}" (keyring: ${keyring.ids.join(', ')})\n`);
  let lastLine = 0;
  const progress = (r: RekeyReport) => {
    const done = r.total - r.left;
    if (io.isTTY) {
      const width = 30;
      const filled = r.total === 0 ? width : Math.round((done / r.total) * width);
      io.stderr(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${r.total}  rekeyed ${r.rekeyed}, current ${r.current}`);
    } else if (done - lastLine >= every) {
      lastLine = done;
      io.stderr(`  ${done}/${r.total} looked at: ${r.rekeyed} rekeyed, ${r.current} already on "${keyring.newest.id}"\n`);
    }
  };
  const r = await rekeyStore(store, backend, { limit, signal: io.signal, onProgress: progress });
  if (io.isTTY) io.stderr('\n');
  const interrupted = io.signal?.aborted === true;
  io.stdout(
    `${r.total} connections: ${r.rekeyed} rekeyed, ${r.current} already on key "${keyring.newest.id}", ${r.changed} changed meanwhile (written since with the current key, or deleted), ` +
      `${r.unreadable} unreadable (sealed with a key this keyring lacks; left as they are), ${r.busy} busy (their lock stayed taken), ${r.left} not looked at\n`,
  );
  if (r.left > 0 || r.busy > 0) io.stdout(`${interrupted ? 'interrupted' : r.left > 0 ? `stopped at --limit ${limit}` : 'some records were busy'}: run credproxy rekey again to go on (records already on the newest key are skipped)\n`);
  else if (r.unreadable === 0) io.stdout(`every connection is on key "${keyring.newest.id}": older keys can be retired from the keyring\n`);
  return interrupted ? 130 : EXIT.ok;
}
