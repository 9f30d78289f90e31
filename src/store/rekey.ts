import { keyIdOf } from './keyring.js';
import { LockTimeoutError } from './lock.js';
import { connKey, type KeyvConnectionStore, type StoredConnection } from './keyv-store.js';
import { lockNameOf } from './locked-update.js';
import { parseConnKey } from './migrate.js';
import type { Backend } from './backend.js';

export interface RekeyReport {
  /** connection records found */
  total: number;
  /** re-sealed with the newest key by this run */
  rekeyed: number;
  /** already on the newest key (an earlier run, or written since the key was added) */
  current: number;
  /** sealed with a key the ring lacks, or that does not open them: left as they are */
  unreadable: number;
  /** deleted, or rewritten by someone else, while this run got to them */
  changed: number;
  /** their lock stayed taken (a refresh waiting for the store to come back): a rerun gets them */
  busy: number;
  /** not looked at: --limit reached or interrupted */
  left: number;
}

export interface RekeyOptions {
  /** re-seal at most this many records, then stop (rekey in slices; a rerun goes on) */
  limit?: number;
  /** stop taking new records; the ones under way finish */
  signal?: AbortSignal;
  onProgress?: (report: RekeyReport) => void;
  /** records re-sealed at once */
  concurrency?: number;
}

/**
 * Re-seals every connection with the keyring's newest key, online: each record is rewritten
 * under the same per-connection lock a token refresh takes (and, on PostgreSQL, through the
 * fenced write), re-read under it, and written only if the stored value is still the one
 * read, so a refresh or a reconnect on a running instance is never replaced with older
 * credentials. The connection itself is unchanged (same updated_at: it is the same
 * connection). Records already on the newest key are skipped, so an interrupted run is
 * simply run again.
 */
export async function rekeyStore(store: KeyvConnectionStore, backend: Pick<Backend, 'keyv' | 'keys'>, opts: RekeyOptions = {}): Promise<RekeyReport> {
  const newest = store.keyring.newest.id;
  const keys: string[] = [];
  for await (const k of backend.keys()) if (k.startsWith('conn:')) keys.push(k);
  const report: RekeyReport = { total: keys.length, rekeyed: 0, current: 0, unreadable: 0, changed: 0, busy: 0, left: keys.length };
  const stopped = () => opts.signal?.aborted === true || (opts.limit !== undefined && report.rekeyed + inFlight >= opts.limit);
  let inFlight = 0;
  let next = 0;

  const sealedWith = async (k: string): Promise<{ raw: string; keyId: string } | undefined> => {
    const raw = await backend.keyv.get(k);
    if (raw === undefined) return undefined;
    try {
      return { raw, keyId: keyIdOf((JSON.parse(raw) as StoredConnection).sealed) };
    } catch {
      return { raw, keyId: '' }; // not a record this version can read: left as it is
    }
  };

  const one = async (k: string): Promise<keyof RekeyReport> => {
    const parts = parseConnKey(k);
    if (!parts) return 'unreadable';
    const before = await sealedWith(k);
    if (!before) return 'changed';
    if (before.keyId === newest) return 'current';
    if (!store.keyring.has(before.keyId)) return 'unreadable';
    const { entity, integration, label } = parts;
    return locked(entity, integration, label);
  };

  const locked = (entity: string, integration: string, label: string | undefined): Promise<keyof RekeyReport> => {
    const k = connKey(entity, integration, label);
    return store.locks.withLock(
      lockNameOf(entity, integration, label),
      async (lock) => {
        const now = await sealedWith(k);
        if (!now) return 'changed';
        if (now.keyId === newest) return 'current';
        const conn = await store.get(entity, integration, { fresh: true, label });
        if (!conn) return 'changed';
        if (conn.unreadable) return 'unreadable';
        // The admin API writes without the lock: a reconnect since `now` was read wins.
        if ((await backend.keyv.get(k)) !== now.raw) return 'changed';
        await store.put(conn, { lock });
        return 'rekeyed';
      },
      { ttlMs: 30_000 },
    ).catch((err: unknown) => {
      if (err instanceof LockTimeoutError) return 'busy' as const;
      throw err;
    });
  };

  const worker = async () => {
    while (next < keys.length && !stopped()) {
      const k = keys[next++]!;
      inFlight++;
      let outcome: keyof RekeyReport;
      try {
        outcome = await one(k);
      } finally {
        inFlight--;
      }
      report[outcome]++;
      report.left--;
      opts.onProgress?.(report);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency ?? 4) }, worker));
  return report;
}
