import { createCipheriv, createDecipheriv, randomBytes, scrypt as scryptCb, type ScryptOptions } from 'node:crypto';
import { keyIdOf } from './keyring.js';
import { connKey, type KeyvConnectionStore, type StoredConnection } from './keyv-store.js';
import { lockNameOf } from './locked-update.js';
import { parseConnKey } from './migrate.js';
import { COUNTS_KEY } from './observed.js';
import type { Backend } from './backend.js';
import type { Connection } from './types.js';

/**
 * `credproxy export` / `import`: the store's durable contents in one file, encrypted to a
 * passphrase. The file is JSON:
 *
 *   {"format": "credproxy-export", "version": 1, "created_at": ISO time,
 *    "kdf": {"name": "scrypt", "N", "r", "p", "salt"}, "cipher": "aes-256-gcm",
 *    "iv", "tag", "data"}                               (binary fields base64)
 *
 * `data` decrypts (key = scrypt(passphrase), the header bound as AAD so none of it can be
 * changed) to the Payload below. Connections are in it decrypted, so the file opens into a
 * store with any storage key; the file itself is the only copy of them at rest, sealed.
 */
export const EXPORT_FORMAT = 'credproxy-export';
export const EXPORT_VERSION = 1;

export interface ExportRecord {
  key: string;
  value: string;
  /** ms since epoch; absent: does not expire */
  expires_at?: number;
}

export interface Payload {
  connections: Connection[];
  /** connections whose key the exporting ring lacked, as stored (still sealed): restored as they are */
  sealed: ExportRecord[];
  /** entity token records (hash → entity, id → hash), with their expiry */
  entity_tokens: ExportRecord[];
  label_indexes: Array<{ entity: string; integration: string; labels: string[] }>;
}

interface Header {
  format: string;
  version: number;
  created_at: string;
  kdf: { name: 'scrypt'; N: number; r: number; p: number; salt: string };
  cipher: 'aes-256-gcm';
}

export class ExportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExportError';
  }
}

/** 2^15: about 0.1 s and 32 MiB per derivation, OWASP's floor for scrypt. */
const KDF = { N: 2 ** 15, r: 8, p: 1 };

function deriveKey(passphrase: string, salt: Buffer, kdf: { N: number; r: number; p: number }): Promise<Buffer> {
  const opts: ScryptOptions = { N: kdf.N, r: kdf.r, p: kdf.p, maxmem: 256 * kdf.N * kdf.r };
  return new Promise((resolve, reject) => scryptCb(passphrase.normalize('NFC'), salt, 32, opts, (err, key) => (err ? reject(err) : resolve(key))));
}

const aadOf = (h: Header) => Buffer.from(JSON.stringify([h.format, h.version, h.created_at, h.kdf, h.cipher]), 'utf8');

export async function sealExport(payload: Payload, passphrase: string, now = new Date()): Promise<string> {
  if (passphrase === '') throw new ExportError('the passphrase is empty');
  const salt = randomBytes(16);
  const header: Header = { format: EXPORT_FORMAT, version: EXPORT_VERSION, created_at: now.toISOString(), kdf: { name: 'scrypt', ...KDF, salt: salt.toString('base64') }, cipher: 'aes-256-gcm' };
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', await deriveKey(passphrase, salt, KDF), iv, { authTagLength: 16 });
  cipher.setAAD(aadOf(header));
  const data = Buffer.concat([cipher.update(JSON.stringify(payload), 'utf8'), cipher.final()]);
  return `${JSON.stringify({ ...header, iv: iv.toString('base64'), tag: cipher.getAuthTag().toString('base64'), data: data.toString('base64') })}\n`;
}

export async function openExport(text: string, passphrase: string): Promise<{ payload: Payload; created_at: string; version: number }> {
  let file: Header & { iv?: unknown; tag?: unknown; data?: unknown };
  try {
    file = JSON.parse(text) as typeof file;
  } catch {
    throw new ExportError('not a credproxy export file (not JSON)');
  }
  if (file?.format !== EXPORT_FORMAT) throw new ExportError('not a credproxy export file');
  if (file.version !== EXPORT_VERSION) throw new ExportError(`export format version ${String(file.version)} is not one this credproxy reads (it reads ${EXPORT_VERSION}); use a newer credproxy`);
  const { kdf } = file;
  if (kdf?.name !== 'scrypt' || file.cipher !== 'aes-256-gcm' || typeof file.iv !== 'string' || typeof file.tag !== 'string' || typeof file.data !== 'string') {
    throw new ExportError('the export file is damaged (missing or unknown cipher fields)');
  }
  // Bounds: a crafted file must not make the import spend gigabytes on the derivation.
  if (![kdf.N, kdf.r, kdf.p].every(Number.isInteger) || kdf.N > 2 ** 20 || kdf.r > 32 || kdf.p > 16) throw new ExportError('the export file asks for scrypt parameters out of bounds');
  const header: Header = { format: file.format, version: file.version, created_at: file.created_at, kdf, cipher: file.cipher };
  const key = await deriveKey(passphrase, Buffer.from(kdf.salt, 'base64'), kdf);
  let plain: string;
  try {
    const d = createDecipheriv('aes-256-gcm', key, Buffer.from(file.iv, 'base64'), { authTagLength: 16 });
    d.setAAD(aadOf(header));
    d.setAuthTag(Buffer.from(file.tag, 'base64'));
    plain = Buffer.concat([d.update(Buffer.from(file.data, 'base64')), d.final()]).toString('utf8');
  } catch {
    throw new ExportError('wrong passphrase, or the export file was changed');
  }
  const payload = JSON.parse(plain) as Payload;
  checkPayload(payload);
  return { payload, created_at: header.created_at, version: header.version };
}

const isText = (v: unknown): v is string => typeof v === 'string' && v !== '';
const isTextMap = (v: unknown) => v !== null && typeof v === 'object' && !Array.isArray(v) && Object.values(v as object).every((x) => typeof x === 'string');

/** What import relies on, checked before anything is written: a damaged file writes nothing. */
function checkPayload(p: Payload): void {
  const bad = (what: string) => {
    throw new ExportError(`the export file is damaged: ${what}`);
  };
  if (![p?.connections, p?.sealed, p?.entity_tokens, p?.label_indexes].every(Array.isArray)) bad('a section is missing');
  for (const c of p.connections) {
    if (!isText(c?.entity) || !isText(c.integration) || (c.label !== undefined && !isText(c.label))) bad('a connection without entity or integration');
    if (!isText(c.scheme) || !isTextMap(c.params) || !isTextMap(c.credentials) || typeof c.updated_at !== 'number' || typeof c.created_at !== 'number') {
      bad(`connection ${c.entity}/${c.integration} is incomplete`);
    }
    if (!['initiated', 'active', 'expired', 'failed'].includes(c.status)) bad(`connection ${c.entity}/${c.integration} has status "${String(c.status)}"`);
  }
  for (const r of [...p.sealed, ...p.entity_tokens]) if (!isText(r?.key) || typeof r.value !== 'string') bad('a record without key or value');
  if (!p.sealed.every((r) => r.key.startsWith('conn:'))) bad('a sealed record that is not a connection');
  if (!p.entity_tokens.every((r) => TOKEN_KEY.test(r.key))) bad('an entity token record under another key');
}

const TOKEN_KEY = /^kv:entity-token(-id)?:/;

/** Everything durable in the store: connections, label indexes, entity tokens (not links, states, locks, counts). */
export async function collectExport(store: KeyvConnectionStore, backend: Pick<Backend, 'keyv' | 'keys'>): Promise<Payload> {
  const out: Payload = { connections: [], sealed: [], entity_tokens: [], label_indexes: [] };
  for await (const k of backend.keys()) {
    if (k.startsWith('conn:')) {
      const parts = parseConnKey(k);
      if (!parts) continue;
      const c = await store.get(parts.entity, parts.integration, { fresh: true, label: parts.label });
      if (c?.unreadable) {
        const raw = await backend.keyv.get(k);
        if (raw !== undefined) out.sealed.push({ key: k, value: raw });
      } else if (c) out.connections.push({ ...c });
    } else if (k.startsWith('labels:')) {
      const raw = await backend.keyv.get(k);
      const [entity, integration] = splitLabelsKey(k);
      if (raw !== undefined && entity && integration) out.label_indexes.push({ entity, integration, labels: JSON.parse(raw) as string[] });
    } else if (TOKEN_KEY.test(k)) {
      const raw = await backend.keyv.getRaw(k);
      if (raw === undefined || typeof raw.value !== 'string') continue;
      out.entity_tokens.push({ key: k, value: raw.value, ...(typeof raw.expires === 'number' ? { expires_at: raw.expires } : {}) });
    }
  }
  return out;
}

/** `labels:<entity>:<integration>`: integration names hold no `:`. */
function splitLabelsKey(k: string): [string | undefined, string | undefined] {
  const rest = k.slice('labels:'.length);
  const colon = rest.lastIndexOf(':');
  return colon <= 0 ? [undefined, undefined] : [rest.slice(0, colon), rest.slice(colon + 1)];
}

export interface ImportReport {
  /** written: absent from the store, or older there */
  restored: { connections: number; sealed: number; entity_tokens: number };
  /** left alone: the store's copy is as new or newer (by updated_at), or the same token record */
  kept: { connections: number; sealed: number; entity_tokens: number };
  /** expired entity tokens, not restored */
  expired: number;
  label_indexes: number;
}

/**
 * Restores a payload into a store. Idempotent: a connection is written only when the store
 * has none or an older one (updated_at strictly smaller), so importing twice changes
 * nothing and an older backup never replaces a newer connection (a refreshed token, a
 * reconnect). Written under the connection's lock and only if the stored value did not
 * change since it was compared, as credproxy rekey. Label indexes follow the connections
 * (every write maintains them). Entity tokens are restored when absent: a token revoked
 * after the export comes back with it.
 */
export async function importPayload(store: KeyvConnectionStore, backend: Pick<Backend, 'keyv'> & Partial<Pick<Backend, 'keys'>>, payload: Payload): Promise<ImportReport> {
  const report: ImportReport = { restored: { connections: 0, sealed: 0, entity_tokens: 0 }, kept: { connections: 0, sealed: 0, entity_tokens: 0 }, expired: 0, label_indexes: payload.label_indexes.length };
  const updatedAt = (raw: string | undefined) => (raw === undefined ? undefined : (JSON.parse(raw) as StoredConnection).updated_at);

  for (const c of payload.connections) {
    const k = connKey(c.entity, c.integration, c.label);
    const wrote = await store.locks.withLock(lockNameOf(c.entity, c.integration, c.label), async (lock) => {
      const raw = await backend.keyv.get(k);
      const there = updatedAt(raw);
      if (there !== undefined && there >= c.updated_at) return false;
      const { unreadable: _u, ...conn } = c;
      await store.put(conn, { lock });
      return true;
    });
    report[wrote ? 'restored' : 'kept'].connections++;
  }
  for (const r of payload.sealed) {
    const parts = parseConnKey(r.key);
    if (!parts) continue;
    keyIdOf((JSON.parse(r.value) as StoredConnection).sealed); // a damaged record fails here, not later
    const wrote = await store.locks.withLock(lockNameOf(parts.entity, parts.integration, parts.label), async () => {
      const there = updatedAt(await backend.keyv.get(r.key));
      if (there !== undefined && there >= (updatedAt(r.value) ?? 0)) return false;
      await backend.keyv.set(r.key, r.value);
      return true;
    });
    report[wrote ? 'restored' : 'kept'].sealed++;
  }
  // Connections written above indexed themselves; this adds labels of restored sealed records.
  for (const { entity, integration, labels } of payload.label_indexes) {
    const ik = `labels:${entity}:${integration}`;
    await store.locks.withLock(ik, async () => {
      const raw = await backend.keyv.get(ik);
      const now = new Set<string>(raw === undefined ? [] : (JSON.parse(raw) as string[]));
      const before = now.size;
      for (const l of labels) if ((await backend.keyv.get(connKey(entity, integration, l))) !== undefined) now.add(l);
      if (now.size !== before) await backend.keyv.set(ik, JSON.stringify([...now].sort()));
    }, { ttlMs: 10_000 });
  }
  // The counts by status (a gauge the proxies keep up to date on their own writes) did not see these.
  if (report.restored.connections + report.restored.sealed > 0 && backend.keys) await recount(backend as Pick<Backend, 'keyv' | 'keys'>);
  for (const r of payload.entity_tokens) {
    const ttl = r.expires_at === undefined ? undefined : r.expires_at - Date.now();
    if (ttl !== undefined && ttl <= 0) {
      report.expired++;
      continue;
    }
    if ((await backend.keyv.get(r.key)) !== undefined) {
      report.kept.entity_tokens++;
      continue;
    }
    await backend.keyv.set(r.key, r.value, ttl);
    report.restored.entity_tokens++;
  }
  return report;
}

/** Counts connections by status from what is stored (status is kept in clear) and writes the gauge record. */
async function recount(backend: Pick<Backend, 'keyv' | 'keys'>): Promise<void> {
  const counts: Record<string, number> = {};
  for await (const k of backend.keys()) {
    if (!k.startsWith('conn:')) continue;
    const raw = await backend.keyv.get(k);
    if (raw === undefined) continue;
    const { status } = JSON.parse(raw) as StoredConnection;
    counts[status] = (counts[status] ?? 0) + 1;
  }
  await backend.keyv.set(`kv:${COUNTS_KEY}`, JSON.stringify(counts));
}
