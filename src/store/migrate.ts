import { isDeepStrictEqual } from 'node:util';
import { KeyvConnectionStore } from './keyv-store.js';
import type { Keyring } from './keyring.js';
import type { Backend } from './backend.js';
import { parseConnKey } from './scan.js';

/** What credproxy copies: connections, label indexes, and kv records (entity token hashes, links, states, counts). */
export type Kind = 'connections' | 'label_indexes' | 'records';

const kindOf = (key: string): Kind | undefined =>
  key.startsWith('conn:') ? 'connections' : key.startsWith('labels:') ? 'label_indexes' : key.startsWith('kv:') ? 'records' : undefined;

export interface MigrateReport {
  copied: Record<Kind, number>;
  /** connections decrypted on both sides and found equal */
  sampled: number;
}

export class MigrateError extends Error {}

/** Kept here too: export, rekey and the key check import it from this module. */
export { parseConnKey };

/**
 * Copies every record from one store's backend to another's, sealed values as they are (the
 * same storage key opens them on both sides; nothing is decrypted to be copied), expiring
 * records with the time they have left. Reads only on the source, so the proxies using it
 * keep serving; a record changed on the source after it was copied is caught by running
 * migrate again (each run overwrites the destination's copy with the source's current one).
 *
 * Checked before: the key opens a sample of the source's connections (a wrong key is not
 * discovered after the copy). Checked after: every copied key is on the destination, and
 * the sample decrypts there to the same credentials.
 */
export async function migrateStore(
  from: Backend,
  to: Backend,
  key: Buffer | Keyring,
  opts: { sample?: number; onProgress?: (copied: number) => void } = {},
): Promise<MigrateReport> {
  const sampleSize = opts.sample ?? 5;
  const reader = new KeyvConnectionStore(from.keyv, key);
  const checker = new KeyvConnectionStore(to.keyv, key);
  const copied: Record<Kind, number> = { connections: 0, label_indexes: 0, records: 0 };
  const keys: string[] = [];
  const sample: Array<{ key: string; credentials: Record<string, string> }> = [];

  const copyOne = async (k: string, kind: Kind) => {
    const raw = await from.keyv.getRaw(k);
    if (raw === undefined) return; // deleted or expired since it was listed
    let ttl: number | undefined;
    if (typeof raw.expires === 'number') {
      ttl = raw.expires - Date.now();
      if (ttl <= 0) return;
    }
    await to.keyv.set(k, raw.value, ttl);
    copied[kind]++;
    keys.push(k);
  };
  // A few records at a time: round trips overlap without flooding either store.
  let batch: Array<Promise<void>> = [];
  for await (const k of from.keys()) {
    const kind = kindOf(k);
    if (!kind) continue; // locks and rate buckets belong to the running proxies, not the data
    if (kind === 'connections' && sample.length < sampleSize) {
      const parts = parseConnKey(k);
      if (!parts) continue;
      let conn;
      try {
        conn = await reader.get(parts.entity, parts.integration, { fresh: true, label: parts.label });
      } catch (err) {
        throw new MigrateError(`the storage key does not open the source's connection ${k} (${(err as Error).message}): is CREDPROXY_SECRET_KEY the key this store was written with?`);
      }
      if (conn?.unreadable) throw new MigrateError(`the storage key does not open the source's connection ${k} (${conn.reason}): is CREDPROXY_SECRET_KEY the key this store was written with?`);
      if (conn) sample.push({ key: k, credentials: conn.credentials });
    }
    batch.push(copyOne(k, kind));
    if (batch.length >= 20) {
      await Promise.all(batch);
      batch = [];
      if (keys.length % 500 < 20) opts.onProgress?.(keys.length);
    }
  }
  await Promise.all(batch);
  opts.onProgress?.(keys.length);

  const there = new Set<string>();
  for await (const k of to.keys()) there.add(k);
  const missing = keys.filter((k) => !there.has(k));
  if (missing.length > 0) throw new MigrateError(`${missing.length} copied records are not on the destination (first: ${missing[0]})`);
  for (const s of sample) {
    const parts = parseConnKey(s.key)!;
    const got = await checker.get(parts.entity, parts.integration, { fresh: true, label: parts.label });
    if (!got || got.unreadable || !isDeepStrictEqual(got.credentials, s.credentials)) throw new MigrateError(`connection ${s.key} does not decrypt to the same credentials on the destination`);
  }
  return { copied, sampled: sample.length };
}
