import { appendFileSync } from 'node:fs';
import { appendFile, mkdir, rename, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { CredproxyError } from '../errors.js';
import { flushAtExit, type SyncFlushable } from '../exit-flush.js';
import { makePrivateDir } from '../store/private-files.js';
import { readTail } from './tail.js';

/**
 * One request to an integration host. Built from the pipeline's RequestInfo, which holds
 * the path without its query and never a credential, header or body: nothing secret can
 * reach this record.
 */
export interface AuditEntry {
  time: string;
  entity: string | null;
  integration: string;
  /** the connection label the request picked; null for the default connection */
  label: string | null;
  method: string;
  host: string;
  path: string;
  status: number;
  /** request body bytes read from the client, response bytes written to it (wire, approximate under pipelining) */
  bytes_in: number;
  bytes_out: number;
  ms: number;
  refreshed: boolean;
  replayed: boolean;
  client: string | null;
}

export interface AuditQuery {
  entity?: string;
  integration?: string;
  /** ms since epoch: entries at or after it */
  since?: number;
  limit: number;
}

/**
 * What GET /api/audit, `credproxy audit` and the dashboard say with `audit.enabled: false`:
 * an empty list would read as "no requests", which is not what happened.
 */
export const AUDIT_OFF = 'the audit log is turned off (audit.enabled: false in credproxy.yaml); set audit.enabled: true to record requests again';

/** How many entries the in-memory ring keeps (all the API has without `audit.file`). */
const RING = 10_000;

/** Lines are appended in batches: when this many characters are pending, or after FLUSH_MS. */
export const AUDIT_BATCH_CHARS = 65_536;
export const AUDIT_FLUSH_MS = 200;

const sizeOf = async (file: string) => {
  try {
    return (await stat(file)).size;
  } catch {
    return 0;
  }
};

const ignoreMissing = (err: unknown) => {
  if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
};

/**
 * JSON lines appended to `audit.file`, rotated when it passes `max_bytes` (file → file.1 →
 * … → file.<keep>), or without a file a ring of the latest entries in memory. Lines are
 * gathered and appended in batches (one append per AUDIT_FLUSH_MS or AUDIT_BATCH_CHARS,
 * rather than an open, write and close per request), asynchronously, so no request waits on
 * the disk: batches are written one after another, each whole and in the order recorded.
 * A query and close() wait for what is pending; the process's exit writes it synchronously
 * (src/exit-flush.ts). A process killed outright loses at most the last AUDIT_FLUSH_MS of lines.
 *
 * With `enabled: false` (audit.enabled) it keeps and writes nothing: the request path checks
 * `enabled` before it builds a record (src/audit/record.ts), and a query is refused with 404.
 */
export class AuditLog implements SyncFlushable {
  /** audit.enabled: false records nothing; read by the request path before anything is built. */
  readonly enabled: boolean;
  /** The latest RING entries (without `audit.file`); none when the log is off. */
  private readonly ring: AuditRing | undefined;
  private dirMade = false;
  /** lines recorded and not yet handed to a write */
  private pending = '';
  /** batches cut from `pending`, waiting for the batch ahead of them to be written */
  private readonly queued: string[] = [];
  /** the end of the chain of batch writes (never rejects: failures go to onError) */
  private tail: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private readonly onError: (err: unknown) => void;

  private readonly opts: { file?: string; max_bytes: number; keep: number };

  constructor(
    opts: { enabled?: boolean; file?: string; max_bytes: number; keep: number },
    hooks: { onError?: (err: unknown) => void; after?: Promise<void> } = {},
  ) {
    this.enabled = opts.enabled ?? true;
    // Off, the writer has no file: nothing can be appended, flushed or rotated, whatever audit.file says.
    this.opts = { file: this.enabled ? opts.file : undefined, max_bytes: opts.max_bytes, keep: opts.keep };
    // The ring's columns are 10,000 entries long: not allocated for a log that is off.
    this.ring = this.enabled && !this.opts.file ? new AuditRing() : undefined;
    this.onError = hooks.onError ?? (() => undefined);
    // The writer this one replaces finishes first: its lines come before ours in the file.
    if (hooks.after) this.tail = hooks.after.catch(() => undefined);
    if (this.opts.file) flushAtExit(this);
  }

  get file(): string | undefined {
    return this.opts.file;
  }

  record(entry: AuditEntry): void {
    if (this.ring) this.ring.put(Date.parse(entry.time), entry);
    else if (this.opts.file) this.append(entry);
  }

  /**
   * The same as record() for an entry made at `at` (ms since the epoch): without a file the
   * time is kept as a number and written out only when the ring is read, so the request
   * pays for no date string.
   */
  recordAt(at: number, fields: AuditFields): void {
    if (this.ring) this.ring.put(at, fields);
    else if (this.opts.file) this.append({ time: new Date(at).toISOString(), ...fields });
  }

  private append(entry: AuditEntry): void {
    this.pending += `${JSON.stringify(entry)}\n`;
    // A batch is a small part of max_bytes, so rotation (checked per batch) stays close to it.
    if (this.pending.length >= Math.min(AUDIT_BATCH_CHARS, this.opts.max_bytes / 8)) void this.flush();
    else if (!this.timer) {
      this.timer = setTimeout(() => void this.flush(), AUDIT_FLUSH_MS);
      this.timer.unref();
    }
  }

  /** Hands the pending lines to the write chain; resolves once they (and every batch before them) are written. */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.opts.file && this.pending !== '') {
      this.queued.push(this.pending);
      this.pending = '';
      // One link per batch: each takes the oldest queued batch, so the order is the order recorded.
      this.tail = this.tail.then(() => this.writeNext());
    }
    return this.tail;
  }

  /**
   * The exit hook ('exit' handlers cannot wait): the queued and pending lines, appended
   * synchronously in order. A batch whose asynchronous write already started is left to it.
   */
  flushSync(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const file = this.opts.file;
    const text = this.queued.join('') + this.pending;
    this.queued.length = 0;
    this.pending = '';
    if (!file || text === '') return;
    try {
      if (!this.dirMade) makePrivateDir(dirname(file));
      appendFileSync(file, text, { mode: 0o600 });
    } catch (err) {
      this.onError(err);
    }
  }

  /** Writes what is pending; the writer is not used again (a reload replaced it, or the runtime closed). */
  close(): Promise<void> {
    return this.flush();
  }

  private async writeNext(): Promise<void> {
    const batch = this.queued.shift();
    const file = this.opts.file;
    if (batch === undefined || !file) return; // written by flushSync meanwhile
    try {
      if (!this.dirMade) {
        await mkdir(dirname(file), { recursive: true, mode: 0o700 });
        this.dirMade = true;
      }
      // The file's real size, once per batch: other processes (credproxy start --workers)
      // append to it and rotate it too.
      const size = await sizeOf(file);
      if (size > 0 && size + batch.length > this.opts.max_bytes) await this.rotate(file);
      await appendFile(file, batch, { mode: 0o600 });
    } catch (err) {
      this.onError(err);
    }
  }

  private async rotate(file: string): Promise<void> {
    const { keep } = this.opts;
    await unlink(`${file}.${keep}`).catch(ignoreMissing);
    for (let i = keep - 1; i >= 1; i--) await rename(`${file}.${i}`, `${file}.${i + 1}`).catch(ignoreMissing);
    await rename(file, `${file}.1`).catch(ignoreMissing);
  }

  /**
   * Matching entries, oldest first, the latest `limit` of them: read from the end of the
   * files backwards until enough match (src/audit/tail.ts), or from the ring. A log that is
   * off rejects with 404 not_found (AUDIT_OFF) rather than answer an empty list.
   */
  async query(q: AuditQuery): Promise<AuditEntry[]> {
    if (!this.enabled) throw new CredproxyError('not_found', AUDIT_OFF);
    const since = q.since;
    const matches = (e: AuditEntry) =>
      (q.entity === undefined || e.entity === q.entity) &&
      (q.integration === undefined || e.integration === q.integration) &&
      (since === undefined || Date.parse(e.time) >= since);
    // On and without a file, there is a ring.
    if (!this.opts.file) return this.ring!.inOrder().filter(matches).slice(-q.limit);
    await this.flush();
    const files = [this.opts.file, ...Array.from({ length: this.opts.keep }, (_, i) => `${this.opts.file}.${i + 1}`)];
    return readTail(files, { matches, limit: q.limit, since });
  }
}

/** An audit entry before its time is written out. */
export type AuditFields = Omit<AuditEntry, 'time'>;

/**
 * The latest RING entries as a circular buffer of columns: `next` is where the next one goes
 * (and, once full, the oldest). Each entry lives for RING requests, long enough for V8 to
 * move it to the old generation, so an object (and a date string) per entry was old-space
 * garbage on every request; in columns only the request's own strings (entity, host, path)
 * are. Dropping the oldest with splice() moved 10,000 slots on every request, which
 * profiling once showed as the largest single cost of a proxied request.
 */
class AuditRing {
  private size = 0;
  private next = 0;
  private readonly at = new Float64Array(RING);
  private readonly numbers = new Float64Array(RING * 4);
  private readonly flags = new Uint8Array(RING);
  private readonly strings: Array<string | null> = new Array<string | null>(RING * 7).fill(null);

  put(at: number, e: AuditFields): void {
    const i = this.next;
    this.at[i] = at;
    const n = i * 4;
    this.numbers[n] = e.status;
    this.numbers[n + 1] = e.bytes_in;
    this.numbers[n + 2] = e.bytes_out;
    this.numbers[n + 3] = e.ms;
    this.flags[i] = (e.refreshed ? 1 : 0) | (e.replayed ? 2 : 0);
    const s = i * 7;
    const str = this.strings;
    str[s] = e.entity;
    str[s + 1] = e.integration;
    str[s + 2] = e.label;
    str[s + 3] = e.method;
    str[s + 4] = e.host;
    str[s + 5] = e.path;
    str[s + 6] = e.client;
    this.next = (i + 1) % RING;
    if (this.size < RING) this.size++;
  }

  private entry(i: number): AuditEntry {
    const n = i * 4;
    const s = i * 7;
    const str = this.strings;
    return {
      time: new Date(this.at[i]!).toISOString(),
      entity: str[s] ?? null,
      integration: str[s + 1]!,
      label: str[s + 2] ?? null,
      method: str[s + 3]!,
      host: str[s + 4]!,
      path: str[s + 5]!,
      status: this.numbers[n]!,
      bytes_in: this.numbers[n + 1]!,
      bytes_out: this.numbers[n + 2]!,
      ms: this.numbers[n + 3]!,
      refreshed: (this.flags[i]! & 1) !== 0,
      replayed: (this.flags[i]! & 2) !== 0,
      client: str[s + 6] ?? null,
    };
  }

  /** The entries, oldest first. */
  inOrder(): AuditEntry[] {
    const out: AuditEntry[] = [];
    const first = this.size < RING ? 0 : this.next;
    for (let k = 0; k < this.size; k++) out.push(this.entry((first + k) % RING));
    return out;
  }
}
