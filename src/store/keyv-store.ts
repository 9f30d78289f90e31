import Keyv from 'keyv';
import { decrypt, encrypt } from './crypto.js';
import type { Invalidation } from './invalidation.js';
import { LocalLockBackend, Locks, type LockBackend } from './lock.js';
import { LocalRateLimit, type RateLimitBackend } from './rate-limit.js';
import type { Connection, ConnectionStore, GetOptions, KeyValue } from './types.js';

/** What is written to the store: metadata in clear, credentials sealed. */
interface StoredConnection {
  v: 1;
  scheme: string;
  params: Record<string, string>;
  status: Connection['status'];
  reason?: string;
  sealed: string;
  expires_at?: number;
  scopes?: string[];
  created_at: number;
  updated_at: number;
}

const aad = (entity: string, integration: string) => `credproxy:connection:${entity}\n${integration}`;
const connKey = (entity: string, integration: string) => `conn:${entity}:${integration}`;

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

  constructor(
    private readonly keyv: Keyv<string>,
    private readonly key: Buffer,
    private readonly opts: KeyvStoreOptions = {},
  ) {
    this.locks = new Locks(opts.locks ?? new LocalLockBackend());
    this.rateLimit = opts.rateLimit ?? new LocalRateLimit();
    opts.invalidation?.subscribe(
      (k) => this.forget(k),
      () => {
        this.epoch++;
        this.cache.clear();
      },
    );
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

  async get(entity: string, integration: string, opts: GetOptions = {}): Promise<Connection | undefined> {
    const k = connKey(entity, integration);
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
    const conn = this.open(entity, integration, raw);
    if (epoch === this.epoch) this.cache.set(k, { conn, at: Date.now() });
    return conn;
  }

  async put(c: Connection): Promise<void> {
    const k = connKey(c.entity, c.integration);
    const stored: StoredConnection = {
      v: 1,
      scheme: c.scheme,
      params: c.params,
      status: c.status,
      reason: c.reason,
      sealed: encrypt(this.key, JSON.stringify(c.credentials), aad(c.entity, c.integration)),
      expires_at: c.expires_at,
      scopes: c.scopes,
      created_at: c.created_at,
      updated_at: c.updated_at,
    };
    // Drop the cached copy first: if the write fails, the next read goes to the backend
    // rather than trusting a value the backend may not hold.
    this.cache.delete(k);
    await this.call(() => this.keyv.set(k, JSON.stringify(stored)));
    this.cache.set(k, { conn: Object.freeze({ ...c }), at: Date.now() });
    await this.announce(k);
  }

  async delete(entity: string, integration: string): Promise<boolean> {
    const k = connKey(entity, integration);
    this.cache.delete(k);
    const deleted = await this.call(() => this.keyv.delete(k));
    await this.announce(k);
    return deleted;
  }

  async list(entity: string, integrations: readonly string[]): Promise<Connection[]> {
    const found = await Promise.all(integrations.map((i) => this.get(entity, i)));
    return found.filter((c): c is Connection => c !== undefined);
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

  private open(entity: string, integration: string, raw: string): Connection {
    const s = JSON.parse(raw) as StoredConnection;
    const credentials = JSON.parse(decrypt(this.key, s.sealed, aad(entity, integration))) as Record<string, string>;
    return Object.freeze({
      entity,
      integration,
      scheme: s.scheme,
      params: s.params,
      status: s.status,
      reason: s.reason,
      credentials,
      expires_at: s.expires_at,
      scopes: s.scopes,
      created_at: s.created_at,
      updated_at: s.updated_at,
    });
  }
}
