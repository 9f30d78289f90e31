import { readFileSync } from 'node:fs';
import { decrypt, encrypt, parseKey } from './crypto.js';

/**
 * The storage keys: every key that may open a record, each under an id, the newest last.
 * New writes are sealed with the newest; older keys only open what they sealed, until they
 * are retired (removed from the ring, after `credproxy rekey`).
 *
 * Sealed blobs: `v1.<iv>.<tag>.<ct>` (no key id: what every credproxy before key rings
 * wrote) is the key with id `default`, the id CREDPROXY_SECRET_KEY and data/secret.key get;
 * `v2.<id>.<iv>.<tag>.<ct>` names its key. A ring whose newest key is `default` keeps
 * writing v1, so older credproxy versions on the same store still read every write (a
 * rolling upgrade, or a downgrade, loses nothing).
 */
export const DEFAULT_KEY_ID = 'default';
// No '.': it separates the id from the rest of a sealed blob.
const ID = /^[A-Za-z0-9_-]{1,64}$/;

export interface KeyEntry {
  id: string;
  key: Buffer;
}

export class KeyringError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeyringError';
  }
}

/** A blob sealed with a key that is not in the ring, or that its key does not open. */
export class UnreadableError extends Error {
  constructor(readonly keyId: string, readonly known: boolean) {
    super(known ? `sealed with key "${keyId}", but that key does not open them` : `sealed with key "${keyId}", which is not in the keyring`);
    this.name = 'UnreadableError';
  }
}

export class Keyring {
  readonly newest: KeyEntry;
  private readonly byId: Map<string, Buffer>;

  constructor(readonly entries: readonly KeyEntry[]) {
    const last = entries[entries.length - 1];
    if (!last) throw new KeyringError('the keyring holds no key');
    this.newest = last;
    this.byId = new Map(entries.map((e) => [e.id, e.key]));
  }

  static single(key: Buffer, id = DEFAULT_KEY_ID): Keyring {
    return new Keyring([{ id, key }]);
  }

  get ids(): string[] {
    return this.entries.map((e) => e.id);
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  seal(plaintext: string, aad: string): string {
    const blob = encrypt(this.newest.key, plaintext, aad);
    return this.newest.id === DEFAULT_KEY_ID ? blob : `v2.${this.newest.id}.${blob.slice('v1.'.length)}`;
  }

  /** Throws UnreadableError when the blob's key is missing or does not open it. */
  open(blob: string, aad: string): string {
    const id = keyIdOf(blob);
    const key = this.byId.get(id);
    if (!key) throw new UnreadableError(id, false);
    const v1 = id === DEFAULT_KEY_ID && blob.startsWith('v1.') ? blob : `v1.${blob.slice(`v2.${id}.`.length)}`;
    try {
      return decrypt(key, v1, aad);
    } catch {
      throw new UnreadableError(id, true);
    }
  }
}

/** The id of the key that sealed `blob`, read without decrypting it. */
export function keyIdOf(blob: string): string {
  if (blob.startsWith('v1.')) return DEFAULT_KEY_ID;
  const m = /^v2\.([^.]+)\./.exec(blob);
  if (!m) throw new Error('stored credentials are not in a format this version can read');
  return m[1]!;
}

/**
 * `id:key` pairs, newest last, separated by commas, spaces or newlines; `#` starts a comment
 * (key files). Keys are 32 bytes as base64 or hex, like CREDPROXY_SECRET_KEY.
 */
export function parseKeyring(text: string, source: string): Keyring {
  const entries: KeyEntry[] = [];
  const items = text
    .split('\n')
    .map((line) => line.replace(/#.*$/, ''))
    .flatMap((line) => line.split(/[,\s]+/))
    .filter((item) => item !== '');
  for (const item of items) {
    const colon = item.indexOf(':');
    const id = colon < 0 ? '' : item.slice(0, colon);
    if (!ID.test(id)) throw new KeyringError(`${source}: expected id:key pairs (an id of letters, digits, _ and - then ":" and a 32-byte base64 or hex key); got an entry starting "${id.slice(0, 20) || item.slice(0, 4)}…"`);
    const key = parseKey(item.slice(colon + 1));
    if (!key) throw new KeyringError(`${source}: the key of "${id}" must be 32 bytes, as base64 or hex (openssl rand -base64 32)`);
    if (entries.some((e) => e.id === id)) throw new KeyringError(`${source}: key id "${id}" is given twice`);
    if (entries.some((e) => e.key.equals(key))) throw new KeyringError(`${source}: the key of "${id}" is also given under another id`);
    entries.push({ id, key });
  }
  if (entries.length === 0) throw new KeyringError(`${source} holds no key`);
  return new Keyring(entries);
}

/**
 * The keyring the environment gives, if any: CREDPROXY_SECRET_KEYS, CREDPROXY_SECRET_KEYS_FILE
 * or CREDPROXY_SECRET_KEY (one key, id `default`). More than one of them is an error: which
 * wins would be a guess, and a wrong guess seals new records with an unexpected key.
 */
export function keyringFromEnv(env: NodeJS.ProcessEnv): Keyring | undefined {
  const given = (['CREDPROXY_SECRET_KEY', 'CREDPROXY_SECRET_KEYS', 'CREDPROXY_SECRET_KEYS_FILE'] as const).filter((n) => env[n] !== undefined && env[n] !== '');
  if (given.length > 1) throw new KeyringError(`${given.join(' and ')} are all set: set only one (CREDPROXY_SECRET_KEY is the key with id "default" in a keyring)`);
  if (env.CREDPROXY_SECRET_KEYS) return parseKeyring(env.CREDPROXY_SECRET_KEYS, 'CREDPROXY_SECRET_KEYS');
  const file = env.CREDPROXY_SECRET_KEYS_FILE;
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new KeyringError(`CREDPROXY_SECRET_KEYS_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    return parseKeyring(text, file);
  }
  if (env.CREDPROXY_SECRET_KEY) {
    const key = parseKey(env.CREDPROXY_SECRET_KEY);
    if (!key) throw new KeyringError('CREDPROXY_SECRET_KEY must be 32 bytes, as base64 or hex (openssl rand -base64 32)');
    return Keyring.single(key);
  }
  return undefined;
}
