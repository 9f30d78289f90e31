import Keyv from 'keyv';
import type { Logger } from 'pino';
import type { Invalidation } from './invalidation.js';
import { Keyring, UnreadableError } from './keyring.js';
import { LocalLockBackend, Locks, type LockBackend, type LockHandle } from './lock.js';
import { LocalRateLimit, type RateLimitBackend } from './rate-limit.js';
import { mapKeyScan, scanPage, type KeyScan } from './scan.js';
import type { Connection, ConnectionStore, GetOptions, KeyValue, PutOptions, ScanOptions, ScanPage } from './types.js';

/** What is written to the store: metadata in clear, credentials sealed. */
export interface StoredConnection {
  v: 1;
  scheme: string;
  params: Record<string, string>;
  status: Connection['status'];
  reason?: string;
  sealed: string;
  expires_at?: number;
  refreshed_at?: number;
  scopes?: string[];
  created_at: number;
  updated_at: number;
}

/**
 * Keys and AAD of the default connection are what they were before labels existed, so
 * stored connections stay readable; a label is appended after a character neither entity
 * ids nor integration names can hold (`/`, a newline), so no two connections share either.
 */
export const aad = (entity: string, integration: string, label?: string) =>
  `credproxy:connection:${entity}\n${integration}${label === undefined ? '' : `\n${label}`}`;
export const connKey = (entity: string, integration: string, label?: string) =>
  `conn:${entity}:${integration}${label === undefined ? '' : `/${label}`}`;
/** The labels in use for one entity and integration: what list() reads, as keyv has no scan on every backend. */
const labelsKey = (entity: string, integration: string) => `labels:${entity}:${integration}`;

export interface KeyvStoreOptions {
  /** locks shared by every process on this store; default: in-process (one process per store) */
  locks?: LockBackend;
  /** rate-cap buckets shared the same way; default: in-process */
  rateLimit?: RateLimitBackend;
  /** how other instances learn of writes; none for a store only this process uses */
  invalidation?: Invalidation;
  /**
   * How long a cached connection may be served without asking the backend (shared stores,
   * a fallback should an invalidation be missed); default: until this process changes it.
   */
  cacheTtlMs?: number;
  /** a backend call that has not answered after this long fails (a paused or unreachable server) */
  opTimeoutMs?: number;
  onClose?: () => Promise<void>;
  /**
   * Writes a connection record only while `lock` holds, atomically (PostgreSQL's fenced
   * locks); false when the lock was lost. Without it a `lock` given to put is not checked.
   */
  fencedSet?: (key: string, value: string, lock: LockHandle) => Promise<boolean>;
  /** where a connection sealed with a key the ring lacks is reported (once per connection) */
  log?: Logger;
  /** walks the backend's keys in pages (src/store/scan.ts); default: keyv's in-memory Map */
  scanKeys?: KeyScan;
}

/** A fenced write refused: the lock it was prepared under expired and another holder took it. */
export class LockLostError extends Error {
  constructor(readonly lockName: string) {
    super(`lock "${lockName}" was lost before the write; the write was refused`);
    this.name = 'LockLostError';
  }
}

export class StoreClosedError extends Error {
  constructor() {
    super('the store is closed');
    this.name = 'StoreClosedError';
  }
}

interface Cached {
  conn: Connection;
  at: number;
}

/**
 * The connection store on any keyv backend. Reads are served from an in-memory cache of
 * decrypted connections so the hot path neither touches the backend nor decrypts per
 * request; every write through this store updates or drops the cached entry. On a shared
 * backend (Redis) other instances' writes arrive as invalidations, and the cache is only
 * trusted while those arrive.
 */
export class KeyvConnectionStore implements ConnectionStore {
  readonly kv: KeyValue;
  readonly locks: Locks;
  readonly rateLimit: RateLimitBackend;
  private readonly cache = new Map<string, Cached>();
  /** bumped on every invalidation: a read that started before one must not fill the cache */
  private epoch = 0;
  private closed = false;
  /** settles once a shared store's invalidation channel made its first attempt to listen */
  readonly listening: Promise<void>;
  readonly keyring: Keyring;
  /** connections already reported unreadable: one warning each, not one per request */
  private readonly reported = new Set<string>();

  constructor(
    private readonly keyv: Keyv<string>,
    key: Buffer | Keyring,
    private readonly opts: KeyvStoreOptions = {},
  ) {
    this.keyring = key instanceof Keyring ? key : Keyring.single(key);
    this.locks = new Locks(opts.locks ?? new LocalLockBackend());
    this.rateLimit = opts.rateLimit ?? new LocalRateLimit();
    this.listening = Promise.resolve(opts.invalidation?.subscribe(
      (k) => this.forget(k),
      () => {
        this.epoch++;
        this.cache.clear();
      },
    ));
    const call = <T>(op: () => Promise<T>) => this.call(op);
    this.kv = {
      get: async (k) => (await call(() => keyv.get(`kv:${k}`))) ?? undefined,
      set: async (k, value, ttl) => {
        await call(() => keyv.set(`kv:${k}`, value, ttl));
      },
      delete: (k) => call(() => keyv.delete(`kv:${k}`)),
      take: async (k) => {
        const value = await call(() => keyv.get(`kv:${k}`));
        // delete() reports whether this caller removed it (Redis: UNLINK's count), so of
        // two racing takers, on any instances, only one wins.
        return value !== undefined && (await call(() => keyv.delete(`kv:${k}`))) ? value : undefined;
      },
    };
  }

  peek(entity: string, integration: string, label?: string): Connection | undefined {
    // A closed store answers nothing, not even from its cache (get rejects).
    if (this.closed) return undefined;
    const hit = this.cache.get(connKey(entity, integration, label));
    return hit && this.trusted(hit) ? hit.conn : undefined;
  }

  async get(entity: string, integration: string, opts: GetOptions = {}): Promise<Connection | undefined> {
    const k = connKey(entity, integration, opts.label);
    if (!opts.fresh) {
      const hit = this.cache.get(k);
      if (hit && this.trusted(hit)) return hit.conn;
    }
    const epoch = this.epoch;
    const raw = await this.call(() => this.keyv.get(k));
    if (raw === undefined) {
      this.cache.delete(k);
      return undefined;
    }
    const conn = this.open(entity, integration, opts.label, raw);
    // Not cached when unreadable: a key added to the ring is used on the next read.
    if (epoch === this.epoch && !conn.unreadable) this.cache.set(k, { conn, at: Date.now() });
    return conn;
  }

  async put(c: Connection, opts: PutOptions = {}): Promise<void> {
    const k = connKey(c.entity, c.integration, c.label);
    // Its credentials are not known: writing it would replace the sealed ones with nothing.
    if (c.unreadable) throw new Error(`connection ${k} is sealed with key "${c.unreadable.key_id}", which this keyring cannot open; it cannot be rewritten`);
    const stored: StoredConnection = {
      v: 1,
      scheme: c.scheme,
      params: c.params,
      status: c.status,
      reason: c.reason,
      sealed: this.keyring.seal(JSON.stringify(c.credentials), aad(c.entity, c.integration, c.label)),
      expires_at: c.expires_at,
      ...(c.refreshed_at === undefined ? {} : { refreshed_at: c.refreshed_at }),
      scopes: c.scopes,
      created_at: c.created_at,
      updated_at: c.updated_at,
    };
    // Indexed before it is written: the index may name a label that is not stored (list
    // skips it), never miss one that is. Checked again after the write, in case a delete of
    // the same label removed it from the index in between.
    if (c.label !== undefined) await this.index(c.entity, c.integration, c.label, true);
    // Drop the cached copy first: if the write fails, the next read goes to the backend
    // rather than trusting a value the backend may not hold.
    this.cache.delete(k);
    const { lock } = opts;
    const fenced = this.opts.fencedSet;
    if (lock && fenced) {
      if (!(await this.call(() => fenced(k, JSON.stringify(stored), lock)))) throw new LockLostError(lock.name);
    } else {
      await this.call(() => this.keyv.set(k, JSON.stringify(stored)));
    }
    this.cache.set(k, { conn: Object.freeze({ ...c }), at: Date.now() });
    await this.announce(k);
    if (c.label !== undefined) await this.index(c.entity, c.integration, c.label, true);
  }

  async delete(entity: string, integration: string, label?: string): Promise<boolean> {
    const k = connKey(entity, integration, label);
    this.cache.delete(k);
    const deleted = await this.call(() => this.keyv.delete(k));
    await this.announce(k);
    if (label !== undefined) await this.index(entity, integration, label, false);
    return deleted;
  }

  /** Default connections first, then labelled ones by label, per integration in the order given. */
  async list(entity: string, integrations: readonly string[]): Promise<Connection[]> {
    const per = await Promise.all(
      integrations.map(async (i) => {
        const labels = await this.labels(entity, i);
        return Promise.all([this.get(entity, i), ...labels.map((label) => this.get(entity, i, { label }))]);
      }),
    );
    return per.flat().filter((c): c is Connection => c !== undefined);
  }

  async scan(opts: ScanOptions = {}): Promise<ScanPage> {
    const keys = this.opts.scanKeys ?? (this.keyv.store instanceof Map ? mapKeyScan(this.keyv) : undefined);
    if (!keys) throw new Error('this store cannot list its connections');
    return scanPage(
      (start, cursor, count, hint) => this.call(() => keys(start, cursor, count, hint)),
      (k) => this.call(() => this.keyv.get(k)),
      opts,
    );
  }

  private async labels(entity: string, integration: string): Promise<string[]> {
    const raw = await this.call(() => this.keyv.get(labelsKey(entity, integration)));
    if (raw === undefined) return [];
    const parsed = JSON.parse(raw) as unknown;
    return Array.isArray(parsed) ? parsed.filter((l): l is string => typeof l === 'string') : [];
  }

  /**
   * Adds or removes a label in the index. Under the store's lock for that index, so two
   * instances adding labels at once cannot lose one, and a label is only removed while its
   * connection is not stored (a put racing the delete wins). A connection rewritten under
   * the same label (a token refresh) only reads the index.
   */
  private async index(entity: string, integration: string, label: string, present: boolean): Promise<void> {
    if ((await this.labels(entity, integration)).includes(label) === present) return;
    const ik = labelsKey(entity, integration);
    await this.locks.withLock(
      ik,
      async () => {
        const now = new Set(await this.labels(entity, integration));
        if (present) now.add(label);
        else if ((await this.call(() => this.keyv.get(connKey(entity, integration, label)))) === undefined) now.delete(label);
        else return;
        if (now.size === 0) await this.call(() => this.keyv.delete(ik));
        else await this.call(() => this.keyv.set(ik, JSON.stringify([...now].sort())));
      },
      { ttlMs: 10_000 },
    );
  }

  async ping(): Promise<void> {
    await this.call(() => this.keyv.get('ping'));
  }

  async close(): Promise<void> {
    // Late calls (a retry timer, a request in flight) must fail, not reconnect a closed client.
    this.closed = true;
    this.cache.clear();
    await this.opts.invalidation?.close();
    await this.opts.onClose?.();
  }

  private trusted(hit: Cached): boolean {
    const { invalidation, cacheTtlMs } = this.opts;
    if (invalidation && !invalidation.live) return false;
    return cacheTtlMs === undefined || Date.now() - hit.at < cacheTtlMs;
  }

  private forget(k: string): void {
    this.epoch++;
    this.cache.delete(k);
  }

  /** Tells the other instances; the write itself is done, so a lost message only costs the cache ttl. */
  private async announce(k: string): Promise<void> {
    await this.opts.invalidation?.publish(k).catch(() => undefined);
  }

  private call<T>(start: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new StoreClosedError());
    const op = start();
    const ms = this.opts.opTimeoutMs;
    if (ms === undefined) return op;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the store did not answer within ${ms} ms`)), ms);
    });
    return Promise.race([op, late]).finally(() => clearTimeout(timer));
  }

  private open(entity: string, integration: string, label: string | undefined, raw: string): Connection {
    const s = JSON.parse(raw) as StoredConnection;
    let credentials: Record<string, string>;
    try {
      credentials = JSON.parse(this.keyring.open(s.sealed, aad(entity, integration, label))) as Record<string, string>;
    } catch (err) {
      if (!(err instanceof UnreadableError)) throw err;
      return this.unreadable(entity, integration, label, s, err);
    }
    return Object.freeze({
      entity,
      integration,
      ...(label === undefined ? {} : { label }),
      scheme: s.scheme,
      params: s.params,
      status: s.status,
      reason: s.reason,
      credentials,
      expires_at: s.expires_at,
      ...(s.refreshed_at === undefined ? {} : { refreshed_at: s.refreshed_at }),
      scopes: s.scopes,
      created_at: s.created_at,
      updated_at: s.updated_at,
    });
  }

  /**
   * A connection whose credentials this keyring cannot open is shown, not thrown: one such
   * record must not break the entity's listing, and the operator learns which key is missing.
   */
  private unreadable(entity: string, integration: string, label: string | undefined, s: StoredConnection, err: UnreadableError): Connection {
    const k = connKey(entity, integration, label);
    if (!this.reported.has(k)) {
      this.reported.add(k);
      this.opts.log?.warn(
        { entity, integration, label, key_id: err.keyId, keyring: this.keyring.ids },
        err.known ? 'store: a connection does not decrypt with the key it names (a different key under the same id?)' : 'store: a connection is sealed with a key that is not in the keyring; add it to CREDPROXY_SECRET_KEYS',
      );
    }
    return Object.freeze({
      entity,
      integration,
      ...(label === undefined ? {} : { label }),
      scheme: s.scheme,
      params: s.params,
      status: 'failed',
      reason: `the stored credentials are ${err.message} (keyring: ${this.keyring.ids.join(', ')}); an operator must add that key, or the user connect again`,
      credentials: {},
      expires_at: s.expires_at,
      ...(s.refreshed_at === undefined ? {} : { refreshed_at: s.refreshed_at }),
      scopes: s.scopes,
      created_at: s.created_at,
      updated_at: s.updated_at,
      unreadable: { key_id: err.keyId },
    });
  }
}
