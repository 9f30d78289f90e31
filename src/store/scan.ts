import type Keyv from 'keyv';
import type { ConnectionStatus, ConnectionSummary, ScanOptions, ScanPage } from './types.js';

/**
 * Listing connections across the store (the dashboard's list of all entities, and which
 * connections use an integration) by a paginated walk over the connection keys
 * (`conn:<entity>:<integration>[/<label>]`), which every backend can do without an index:
 *
 * - SQLite, PostgreSQL and memory walk the keys in order (a range on the primary key), so a
 *   cursor is the last key a page used and pages never overlap;
 * - Redis walks with SCAN (MATCH on the key shape, COUNT per call): its cursor is Redis's,
 *   the order is the hash table's, and a page may hold up to one SCAN call's worth more than
 *   the page size (a SCAN batch cannot be cut and resumed); a key may show up twice while Redis
 *   resizes its table, as SCAN documents.
 *
 * Bounded on every backend: a page holds at most `limit` (≤ SCAN_PAGE_MAX) connections and
 * examines at most SCAN_BUDGET keys; a page that hit either bound returns `next`. Nothing is
 * decrypted: what a page shows (status, scheme, expiry, reason) is kept in clear in the record.
 * Chosen over an index maintained on write because it needs no extra write on the hot path,
 * no back-fill for connections stored before it, and no per-backend data structure.
 */

/** One chunk of keys that start with `start` (without the store prefix). */
export interface KeyChunk {
  keys: string[];
  /** where the walk resumes; undefined: the walk is complete */
  next?: string;
  /** keys come in order and a cursor is "after this key": a walk may stop inside a chunk */
  ordered: boolean;
}

/** A hint the backend may use to skip keys early (Redis: MATCH); the store filters exactly anyway. */
export interface KeyHint {
  integration?: string;
}

export type KeyScan = (start: string, cursor: string | undefined, count: number, hint?: KeyHint) => Promise<KeyChunk>;

/** At most this many connections in one page. */
export const SCAN_PAGE_MAX = 200;
/** At most this many keys examined for one page (a filter that matches rarely stops here with `next`). */
export const SCAN_BUDGET = 5_000;
/** Keys per backend call. */
export const SCAN_CHUNK = 500;

/** A cursor that this store did not hand out (or a backend cannot resume from). */
export class ScanCursorError extends Error {
  constructor() {
    super('the page cursor is not valid');
    this.name = 'ScanCursorError';
  }
}

export const encodeCursor = (c: string) => Buffer.from(c, 'utf8').toString('base64url');

export function decodeCursor(c: string | undefined): string | undefined {
  if (c === undefined || c === '') return undefined;
  if (!/^[A-Za-z0-9_-]{1,2048}$/.test(c)) throw new ScanCursorError();
  return Buffer.from(c, 'base64url').toString('utf8');
}

/**
 * A key back to its parts: `conn:<entity>:<integration>[/<label>]`. Integration names hold
 * no `:` and labels no `/`, so the last `:` before any `/` ends the entity.
 */
export function parseConnKey(key: string): { entity: string; integration: string; label?: string } | undefined {
  const rest = key.slice('conn:'.length);
  const slash = rest.indexOf('/');
  const head = slash < 0 ? rest : rest.slice(0, slash);
  const colon = head.lastIndexOf(':');
  if (colon <= 0) return undefined;
  return { entity: head.slice(0, colon), integration: head.slice(colon + 1), ...(slash < 0 ? {} : { label: rest.slice(slash + 1) }) };
}

/** The memory backend (keyv's Map): its keys sorted, so it walks in order like SQL. */
export function mapKeyScan(keyv: Keyv<string>): KeyScan {
  const map = keyv.store as Map<string, unknown>;
  const ns = keyv.namespace ? `${keyv.namespace}:` : '';
  return async (start, cursor, count) => {
    const from = ns + start;
    const after = cursor === undefined ? '' : ns + cursor;
    const keys = [...map.keys()].filter((k) => k.startsWith(from) && k > after).sort();
    const chunk = keys.slice(0, count).map((k) => k.slice(ns.length));
    return { keys: chunk, ordered: true, ...(keys.length > count ? { next: chunk.at(-1)! } : {}) };
  };
}

/** Redis glob characters in a literal part of a MATCH pattern. */
export const globEscape = (s: string) => s.replace(/[\\*?[\]]/g, (c) => `\\${c}`);

/**
 * One page of the walk. `read` fetches a record's stored JSON (clear metadata, sealed
 * credentials) for the keys the key filter let through.
 */
export async function scanPage(scan: KeyScan, read: (key: string) => Promise<string | undefined>, opts: ScanOptions): Promise<ScanPage> {
  const limit = Math.min(Math.max(Math.trunc(opts.limit ?? 50), 1), SCAN_PAGE_MAX);
  let cursor = decodeCursor(opts.cursor);
  const items: ConnectionSummary[] = [];
  const seen = new Set<string>();
  const wanted = (k: string) => {
    const p = parseConnKey(k);
    return p !== undefined && (!opts.integration || p.integration === opts.integration) && (opts.label === undefined || (p.label ?? '') === opts.label);
  };
  let examined = 0;
  for (;;) {
    const count = Math.min(SCAN_CHUNK, SCAN_BUDGET - examined);
    const chunk = await scan('conn:', cursor, count, opts.integration ? { integration: opts.integration } : undefined);
    // Redis examines about COUNT keys per call whatever MATCH lets through: charge the call.
    if (!chunk.ordered) examined += count;
    // Values are read in groups of what the page still needs, not the whole chunk at once; a
    // Redis batch is used whole (its cursor cannot resume inside it), so it is read at once.
    for (let i = 0; i < chunk.keys.length; ) {
      const group: string[] = [];
      const size = chunk.ordered ? Math.max(limit - items.length, 1) : Infinity;
      let j = i;
      for (; j < chunk.keys.length && group.length < size; j++) if (wanted(chunk.keys[j]!)) group.push(chunk.keys[j]!);
      const values = new Map<string, string | undefined>();
      await Promise.all(group.map(async (k) => values.set(k, await read(k))));
      for (; i < j; i++) {
        const k = chunk.keys[i]!;
        if (chunk.ordered) examined++;
        const item = values.has(k) && !seen.has(k) ? summary(k, values.get(k)) : undefined;
        if (item && (!opts.status || item.status === opts.status)) {
          seen.add(k);
          items.push(item);
        }
        if (chunk.ordered && items.length >= limit) {
          const complete = i === chunk.keys.length - 1 && chunk.next === undefined;
          return { items, examined, ...(complete ? {} : { next: encodeCursor(k) }) };
        }
      }
    }
    if (chunk.next === undefined) return { items, examined };
    cursor = chunk.next;
    if (items.length >= limit || examined >= SCAN_BUDGET) return { items, examined, next: encodeCursor(cursor) };
  }
}

function summary(key: string, raw: string | undefined): ConnectionSummary | undefined {
  const p = parseConnKey(key);
  if (!p || raw === undefined) return undefined;
  let s: { scheme?: unknown; status?: unknown; reason?: unknown; expires_at?: unknown; updated_at?: unknown };
  try {
    s = JSON.parse(raw) as typeof s;
  } catch {
    return undefined;
  }
  if (typeof s.scheme !== 'string' || typeof s.status !== 'string') return undefined;
  return {
    entity: p.entity,
    integration: p.integration,
    ...(p.label === undefined ? {} : { label: p.label }),
    scheme: s.scheme,
    status: s.status as ConnectionStatus,
    ...(typeof s.reason === 'string' ? { reason: s.reason } : {}),
    ...(typeof s.expires_at === 'number' ? { expires_at: s.expires_at } : {}),
    updated_at: typeof s.updated_at === 'number' ? s.updated_at : 0,
  };
}
