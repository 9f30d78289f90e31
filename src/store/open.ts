import { join, resolve } from 'node:path';
import Keyv from 'keyv';
import type { Logger } from 'pino';
import type { Settings } from '../config/types.js';
import { parseKey } from './crypto.js';
import { checkKeyring } from './key-check.js';
import { Keyring, keyringFromEnv } from './keyring.js';
import { KeyvConnectionStore } from './keyv-store.js';
import { boundedWait, isPostgresUrl, openPostgres } from './postgres.js';
import { openRedis, redactUrl, type RedisTuning } from './redis.js';
import { mapKeyScan } from './scan.js';
import { readOrCreateSecret } from './secret-file.js';
import { SqliteAdapter } from './sqlite.js';
import type { ConnectionStore } from './types.js';
import type { Backend } from './backend.js';

const LISTEN_WAIT_MS = 5_000;

export interface OpenedStore {
  store: ConnectionStore;
  /** where generated secrets live; undefined for the memory store (nothing persists) */
  dataDir: string | undefined;
}

/** Where an embedded store keeps its file, and so its generated secrets. */
export function dataDirOf(settings: Settings): string | undefined {
  if (settings.store.startsWith('sqlite:')) return resolve(settings.store.slice('sqlite:'.length), '..');
  // memory keeps nothing; Redis is shared by instances that must not each invent secrets.
  return undefined;
}

/** Stores several instances use at once (Redis, PostgreSQL): secrets must be given, never generated. */
export const isShared = (settings: Settings) => /^(rediss?|postgres(ql)?):/.test(settings.store);

/**
 * Instances sharing a Redis or a PostgreSQL must share the storage key (or none can read what another
 * wrote) and the admin token (or the admin API answers 401 depending on which instance the
 * load balancer picks): with a shared store both must be given, never generated per instance.
 */
export function requireSharedSecrets(settings: Settings, env: NodeJS.ProcessEnv): void {
  const missing = [];
  if (!env.CREDPROXY_SECRET_KEY && !env.CREDPROXY_SECRET_KEYS && !env.CREDPROXY_SECRET_KEYS_FILE) {
    missing.push('CREDPROXY_SECRET_KEY or CREDPROXY_SECRET_KEYS (the same storage keys on every instance: openssl rand -base64 32)');
  }
  if (!settings.admin_token && !env.CREDPROXY_ADMIN_TOKEN) missing.push('CREDPROXY_ADMIN_TOKEN (or admin_token in credproxy.yaml; the same on every instance)');
  if (missing.length > 0) {
    throw new Error(`store ${redactUrl(settings.store)} is shared by several instances, so these must be set rather than generated: ${missing.join('; ')}`);
  }
}

/**
 * The storage keys: CREDPROXY_SECRET_KEYS / CREDPROXY_SECRET_KEYS_FILE / CREDPROXY_SECRET_KEY
 * (src/store/keyring.ts), else one key generated once into the data folder (id `default`).
 * A key that does not parse is an error, never silently replaced: that would make every
 * stored credential unreadable.
 */
export function storageKeyring(env: NodeJS.ProcessEnv, dataDir: string | undefined, log: Logger): Keyring {
  const given = keyringFromEnv(env);
  if (given) return given;
  if (!dataDir) return Keyring.single(parseKey(readOrCreateEphemeral())!);
  const path = join(dataDir, 'secret.key');
  const { value, created } = readOrCreateSecret(path);
  if (created) log.warn({ path }, 'CREDPROXY_SECRET_KEY is not set: generated a storage key; back it up, stored credentials cannot be read without it');
  const key = parseKey(value);
  if (!key) throw new Error(`${path} does not hold a 32-byte key`);
  return Keyring.single(key);
}

/** The newest storage key alone (kept for callers that seal with one key). */
export function storageKey(env: NodeJS.ProcessEnv, dataDir: string | undefined, log: Logger): Buffer {
  return storageKeyring(env, dataDir, log).newest.key;
}

function readOrCreateEphemeral(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64');
}

export async function openStore(settings: Settings, env: NodeJS.ProcessEnv, log: Logger, redis: Partial<RedisTuning> = {}): Promise<OpenedStore> {
  if (isShared(settings)) requireSharedSecrets(settings, env);
  const dataDir = dataDirOf(settings);
  const keyring = storageKeyring(env, dataDir, log);
  const backend = await openBackend(settings.store, settings.store_prefix, log, redis);
  try {
    await checkKeyring(backend, keyring, log);
  } catch (err) {
    await backend.options.invalidation?.close();
    await backend.options.onClose?.();
    throw err;
  }
  const store = new KeyvConnectionStore(backend.keyv, keyring, { ...backend.options, log });
  // Serving before the channel listens would cache entries that its start then throws away.
  // Bounded: a channel that cannot come up yet is retried in the background (served uncached).
  await boundedWait(store.listening, LISTEN_WAIT_MS);
  return { store, dataDir };
}

export type { Backend } from './backend.js';

export async function openBackend(url: string, prefix: string, log: Logger, tuning: Partial<RedisTuning> = {}): Promise<Backend> {
  const strip = async function* (all: AsyncIterable<string>) {
    for await (const k of all) if (k.startsWith(`${prefix}:`)) yield k.slice(prefix.length + 1);
  };
  if (url.startsWith('sqlite:')) {
    const adapter = new SqliteAdapter(resolve(url.slice('sqlite:'.length)));
    const keyv = new Keyv<string>({ store: adapter, namespace: prefix, throwOnErrors: true });
    adapter.purgeExpired();
    return {
      keyv,
      options: { onClose: () => adapter.disconnect(), scanKeys: (start, cursor, count) => adapter.scanKeys(prefix, start, cursor, count) },
      keys: () => strip(adapter.keys(prefix)),
    };
  }
  if (url.startsWith('memory')) {
    const keyv = new Keyv<string>({ namespace: prefix, throwOnErrors: true });
    const map = keyv.store as Map<string, unknown>;
    return { keyv, options: { scanKeys: mapKeyScan(keyv) }, keys: () => strip((async function* () { yield* [...map.keys()]; })()) };
  }
  if (isPostgresUrl(url)) {
    const { keyv, pool: _pool, migrated: _migrated, keys, ...options } = await openPostgres(url, prefix, log, tuning);
    return { keyv, options, keys: () => strip(keys()) };
  }
  const { keyv, keys, ...options } = await openRedis(url, prefix, log, tuning);
  return { keyv, options, keys: () => strip(keys()) };
}
