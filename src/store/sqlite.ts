import { EventEmitter } from 'node:events';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { KeyvStoreAdapter, StoredData } from 'keyv';
import { makePrivateDir, makePrivateFile, tightenIfExists } from './private-files.js';

/**
 * A keyv adapter on better-sqlite3: the embedded, persistent default store. @keyv/sqlite
 * needs the `sqlite3` package, which has no build for every Node version and pulls in a
 * second native toolchain; better-sqlite3 builds cleanly here and is synchronous, which
 * suits a single-writer embedded file (WAL mode keeps readers from blocking).
 */
export class SqliteAdapter extends EventEmitter implements KeyvStoreAdapter {
  readonly opts: { path: string };
  namespace?: string;
  private readonly db: Database.Database;
  private readonly stmts;

  constructor(path: string) {
    super();
    this.opts = { path };
    if (path !== ':memory:') {
      makePrivateDir(dirname(path));
      // SQLite creates the file 0644 and gives its -wal and -shm the database file's mode:
      // creating it 0600 first keeps all three private.
      makePrivateFile(path);
      for (const side of ['-wal', '-shm', '-journal']) tightenIfExists(path + side);
    }
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.exec('CREATE TABLE IF NOT EXISTS keyv (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires INTEGER)');
    this.stmts = {
      get: this.db.prepare<[string], { value: string; expires: number | null }>('SELECT value, expires FROM keyv WHERE key = ?'),
      set: this.db.prepare('INSERT INTO keyv (key, value, expires) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, expires = excluded.expires'),
      del: this.db.prepare('DELETE FROM keyv WHERE key = ?'),
      clear: this.db.prepare('DELETE FROM keyv WHERE key LIKE ? ESCAPE \'\\\''),
      purge: this.db.prepare('DELETE FROM keyv WHERE expires IS NOT NULL AND expires <= ?'),
      page: this.db.prepare<[string, string, string, number], { key: string }>('SELECT key FROM keyv WHERE key >= ? AND key < ? AND key > ? ORDER BY key LIMIT ?'),
      keys: this.db.prepare<[string], { key: string }>('SELECT key FROM keyv WHERE key LIKE ? ESCAPE \'\\\' ORDER BY key'),
    };
  }

  async get<Value>(key: string): Promise<StoredData<Value> | undefined> {
    const row = this.stmts.get.get(key);
    if (!row) return undefined;
    if (row.expires !== null && row.expires <= Date.now()) {
      this.stmts.del.run(key);
      return undefined;
    }
    return row.value as StoredData<Value>;
  }

  async getMany<Value>(keys: string[]): Promise<Array<StoredData<Value | undefined>>> {
    return Promise.all(keys.map((k) => this.get<Value>(k)));
  }

  async set(key: string, value: unknown, ttl?: number): Promise<boolean> {
    const expires = typeof ttl === 'number' && ttl > 0 ? Date.now() + ttl : null;
    this.stmts.set.run(key, typeof value === 'string' ? value : JSON.stringify(value), expires);
    return true;
  }

  async delete(key: string): Promise<boolean> {
    return this.stmts.del.run(key).changes > 0;
  }

  async has(key: string): Promise<boolean> {
    return (await this.get(key)) !== undefined;
  }

  async clear(): Promise<void> {
    const prefix = this.namespace ? `${this.namespace}:` : '';
    this.stmts.clear.run(`${prefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
  }

  /** Every key under `<prefix>:` (credproxy migrate); WAL lets this read while the proxy writes. */
  async *keys(prefix: string): AsyncGenerator<string> {
    for (const r of this.stmts.keys.all(`${prefix.replace(/[\\%_]/g, (c) => `\\${c}`)}:%`)) yield r.key;
  }

  /**
   * Up to `count` keys that start with `<prefix>:<start>`, in order, after the key `cursor`
   * (src/store/scan.ts): a range on the primary key, so a page reads only its own rows.
   */
  async scanKeys(prefix: string, start: string, cursor: string | undefined, count: number): Promise<{ keys: string[]; next?: string; ordered: true }> {
    const lo = `${prefix}:${start}`;
    const hi = lo.slice(0, -1) + String.fromCharCode(lo.charCodeAt(lo.length - 1) + 1);
    const rows = this.stmts.page.all(lo, hi, cursor === undefined ? '' : `${prefix}:${cursor}`, count);
    const keys = rows.map((r) => r.key.slice(prefix.length + 1));
    return { keys, ordered: true, ...(keys.length === count ? { next: keys.at(-1)! } : {}) };
  }

  /** Drops expired rows (single-use states, links) so the file does not grow forever. */
  purgeExpired(): number {
    return this.stmts.purge.run(Date.now()).changes;
  }

  async disconnect(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}
