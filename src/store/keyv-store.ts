import Keyv from 'keyv';
import { decrypt, encrypt } from './crypto.js';
import type { Connection, ConnectionStore, KeyValue } from './types.js';

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

/**
 * The connection store on any keyv backend. Reads are served from an in-memory cache of
 * decrypted connections so the hot path neither touches the backend nor decrypts per
 * request; every write through this store updates or drops the cached entry.
 */
export class KeyvConnectionStore implements ConnectionStore {
  readonly kv: KeyValue;
  private readonly cache = new Map<string, Connection>();

  constructor(
    private readonly keyv: Keyv<string>,
    private readonly key: Buffer,
    private readonly onClose: () => Promise<void> = async () => {},
  ) {
    this.kv = {
      get: async (k) => (await keyv.get(`kv:${k}`)) ?? undefined,
      set: async (k, value, ttl) => {
        await keyv.set(`kv:${k}`, value, ttl);
      },
      delete: (k) => keyv.delete(`kv:${k}`),
      take: async (k) => {
        const value = await keyv.get(`kv:${k}`);
        // delete() reports whether this caller removed it, so of two racing takers only one wins.
        return value !== undefined && (await keyv.delete(`kv:${k}`)) ? value : undefined;
      },
    };
  }

  async get(entity: string, integration: string): Promise<Connection | undefined> {
    const k = connKey(entity, integration);
    const hit = this.cache.get(k);
    if (hit) return hit;
    const raw = await this.keyv.get(k);
    if (raw === undefined) return undefined;
    const conn = this.open(entity, integration, raw);
    this.cache.set(k, conn);
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
    await this.keyv.set(k, JSON.stringify(stored));
    this.cache.set(k, Object.freeze({ ...c }));
  }

  async delete(entity: string, integration: string): Promise<boolean> {
    const k = connKey(entity, integration);
    this.cache.delete(k);
    return this.keyv.delete(k);
  }

  async list(entity: string, integrations: readonly string[]): Promise<Connection[]> {
    const found = await Promise.all(integrations.map((i) => this.get(entity, i)));
    return found.filter((c): c is Connection => c !== undefined);
  }

  async ping(): Promise<void> {
    await this.keyv.get('ping');
  }

  async close(): Promise<void> {
    this.cache.clear();
    await this.onClose();
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
