import type { LockHandle, Locks } from './lock.js';
import type { RateLimitBackend } from './rate-limit.js';

/** Connection status (DESIGN.md, contract). */
export type ConnectionStatus = 'initiated' | 'active' | 'expired' | 'failed';

/** One entity's credentials for one integration, decrypted (it only ever lives in memory so). */
export interface Connection {
  entity: string;
  integration: string;
  /** tells apart several connections of one entity to one integration; absent on the default one */
  label?: string;
  /** the auth type chosen among the integration's schemes */
  scheme: string;
  /** non-secret connection parameters (host templates, …) */
  params: Record<string, string>;
  status: ConnectionStatus;
  /** why the status is what it is (e.g. the provider's error), never a secret */
  reason?: string;
  /** secret fields: api_key, token, access_token, refresh_token, … */
  credentials: Record<string, string>;
  /** access token expiry, ms since epoch */
  expires_at?: number;
  /** when credproxy last refreshed the OAuth token (ms since epoch): a time, never a token */
  refreshed_at?: number;
  scopes?: string[];
  created_at: number;
  updated_at: number;
  /**
   * Set when the stored credentials could not be opened (sealed with a key this instance's
   * keyring lacks): the connection is then shown `failed` with the reason, credentials empty,
   * and is never written back.
   */
  unreadable?: { key_id: string };
}

export interface GetOptions {
  /** skip the in-memory cache: read what the store holds now (e.g. under a refresh lock) */
  fresh?: boolean;
  /** the labelled connection rather than the default (unlabelled) one */
  label?: string;
}

/**
 * Where connections live. One interface with embedded (SQLite), memory and Redis behind it,
 * all on keyv; encryption and the in-memory cache sit in one implementation
 * (KeyvConnectionStore) so every backend gets them.
 */
export interface ConnectionStore {
  get(entity: string, integration: string, opts?: GetOptions): Promise<Connection | undefined>;
  /**
   * The connection `get` would answer from the in-memory cache, without waiting; undefined
   * when the cache cannot answer (not cached, no longer trusted, or no such connection): then
   * `get` must be asked. The proxy's hot path tries it first, so a cached connection costs
   * no promise.
   */
  peek?(entity: string, integration: string, label?: string): Connection | undefined;
  /**
   * `lock`: the lock the write was prepared under. A store with fenced locks (PostgreSQL)
   * writes only while that lock still holds and throws LockLostError otherwise.
   */
  put(connection: Connection, opts?: PutOptions): Promise<void>;
  /** the default connection, or the one with `label` */
  delete(entity: string, integration: string, label?: string): Promise<boolean>;
  /** the entity's connections among the given integrations, labelled ones included */
  list(entity: string, integrations: readonly string[]): Promise<Connection[]>;
  /**
   * A page of connections across every entity, metadata only (nothing decrypted), bounded
   * in size and in keys examined: src/store/scan.ts says how each backend walks.
   */
  scan(opts?: ScanOptions): Promise<ScanPage>;
  /** resolves when the backend answers; rejects otherwise (readiness) */
  ping(): Promise<void>;
  /** short-lived, non-connection records (OAuth state, connect links, locks) */
  readonly kv: KeyValue;
  /** named expiring locks, shared by every instance on this store (Redis) or in-process */
  readonly locks: Locks;
  /** token buckets for rate caps, shared by every instance on this store (Redis) or in-process */
  readonly rateLimit: RateLimitBackend;
  close(): Promise<void>;
}

export interface ScanOptions {
  /** only connections to this integration */
  integration?: string;
  /** only connections in this status */
  status?: ConnectionStatus;
  /** only connections with this label ('' : the default, unlabelled ones) */
  label?: string;
  /** from a previous page's `next` */
  cursor?: string;
  /** page size, 1..SCAN_PAGE_MAX; default 50 */
  limit?: number;
}

/** What a listing shows of a connection: its metadata, never a credential. */
export interface ConnectionSummary {
  entity: string;
  integration: string;
  label?: string;
  scheme: string;
  status: ConnectionStatus;
  reason?: string;
  expires_at?: number;
  updated_at: number;
}

export interface ScanPage {
  items: ConnectionSummary[];
  /** give it back as `cursor` for the next page; absent when the walk is complete */
  next?: string;
  /** keys this page examined */
  examined: number;
}

export interface PutOptions {
  lock?: LockHandle;
}

export interface KeyValue {
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string, ttlMs?: number): Promise<void>;
  delete(key: string): Promise<boolean>;
  /** get and delete in one step: single-use records (OAuth state, link ids) */
  take(key: string): Promise<string | undefined>;
}
