import { appendFileSync, existsSync, readFileSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { flushAtExit, type SyncFlushable } from '../exit-flush.js';
import { makePrivateDir } from '../store/private-files.js';

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

/** How many entries the in-memory ring keeps (all the API has without `audit.file`). */
const RING = 10_000;

/** Lines are appended in batches: when this many characters are pending, or after FLUSH_MS. */
export const AUDIT_BATCH_CHARS = 65_536;
export const AUDIT_FLUSH_MS = 200;

const sizeOf = (file: string) => (existsSync(file) ? statSync(file).size : 0);

const byTime = (a: AuditEntry, b: AuditEntry) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0);

/**
 * JSON lines appended to `audit.file`, rotated when it passes `max_bytes` (file → file.1 →
 * … → file.<keep>), or without a file a ring of the latest entries in memory. Lines are
 * gathered and appended in batches (one synchronous append per AUDIT_FLUSH_MS or
 * AUDIT_BATCH_CHARS, rather than an open, write and close per request), so each batch lands
 * whole and in order; a query, flushSync() (at shutdown) and the process's exit write what is
 * pending first.
 * A process killed outright loses at most the last AUDIT_FLUSH_MS of lines.
 */
export class AuditLog implements SyncFlushable {
  /**
   * The latest RING entries, as a circular buffer: `next` is where the next one goes (and,
   * once full, the oldest). Dropping the oldest with splice() moved 10,000 slots on every
   * request, which profiling showed as the largest single cost of a proxied request.
   */
  private readonly ring: AuditEntry[] = [];
  private next = 0;
  private dirMade = false;
  private pending = '';
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: { file?: string; max_bytes: number; keep: number }) {
    if (opts.file) flushAtExit(this);
  }

  get file(): string | undefined {
    return this.opts.file;
  }

  record(entry: AuditEntry): void {
    const file = this.opts.file;
    // With a file, queries read the file: the ring would only hold memory.
    if (!file) {
      this.ring[this.next] = entry;
      this.next = (this.next + 1) % RING;
      return;
    }
    this.pending += `${JSON.stringify(entry)}\n`;
    // A batch is a small part of max_bytes, so rotation (checked per batch) stays close to it.
    if (this.pending.length >= Math.min(AUDIT_BATCH_CHARS, this.opts.max_bytes / 8)) this.flushSync();
    else if (!this.timer) {
      this.timer = setTimeout(() => this.flushSync(), AUDIT_FLUSH_MS);
      this.timer.unref();
    }
  }

  /** Appends the pending lines now (rotating first when they would take the file past max_bytes); synchronous. */
  flushSync(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const file = this.opts.file;
    if (!file || this.pending === '') return;
    const batch = this.pending;
    this.pending = '';
    if (!this.dirMade) {
      makePrivateDir(dirname(file));
      this.dirMade = true;
    }
    // The file's real size, once per batch: other processes (credproxy start --workers)
    // append to it and rotate it too.
    const size = sizeOf(file);
    if (size > 0 && size + batch.length > this.opts.max_bytes) this.rotate(file);
    appendFileSync(file, batch, { mode: 0o600 });
  }

  private rotate(file: string): void {
    const { keep } = this.opts;
    if (existsSync(`${file}.${keep}`)) unlinkSync(`${file}.${keep}`);
    for (let i = keep - 1; i >= 1; i--) if (existsSync(`${file}.${i}`)) renameSync(`${file}.${i}`, `${file}.${i + 1}`);
    renameSync(file, `${file}.1`);
  }

  /** Matching entries, oldest first, the latest `limit` of them: from the files when there are some, else the ring. */
  query(q: AuditQuery): AuditEntry[] {
    this.flushSync();
    // Several writers (--workers) append whole batches, not single lines: order by time.
    const all = this.opts.file ? this.readFiles(this.opts.file).sort(byTime) : this.ringInOrder();
    const since = q.since;
    const hits = all.filter(
      (e) =>
        (q.entity === undefined || e.entity === q.entity) &&
        (q.integration === undefined || e.integration === q.integration) &&
        (since === undefined || Date.parse(e.time) >= since),
    );
    return hits.slice(-q.limit);
  }

  /** The ring's entries, oldest first. */
  private ringInOrder(): AuditEntry[] {
    return this.ring.length < RING ? this.ring : [...this.ring.slice(this.next), ...this.ring.slice(0, this.next)];
  }

  private readFiles(file: string): AuditEntry[] {
    const out: AuditEntry[] = [];
    for (let i = this.opts.keep; i >= 0; i--) {
      const f = i === 0 ? file : `${file}.${i}`;
      let text: string;
      try {
        text = readFileSync(f, 'utf8');
      } catch {
        continue;
      }
      for (const line of text.split('\n')) {
        if (!line) continue;
        try {
          out.push(JSON.parse(line) as AuditEntry);
        } catch {
          /* a torn last line (a crash mid-write) is skipped */
        }
      }
    }
    return out;
  }
}
