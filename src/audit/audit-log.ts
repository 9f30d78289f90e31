import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';

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

/**
 * How often the file's real size is read again: other processes (credproxy start
 * --workers) append to the same file, so this one's own count runs behind. A stat every
 * few lines bounds the overshoot past max_bytes to that many lines per other writer.
 */
const RESTAT_EVERY = 16;

/**
 * JSON lines appended to `audit.file`, rotated when it passes `max_bytes` (file → file.1 →
 * … → file.<keep>), or without a file a ring of the latest entries in memory. Appends are synchronous:
 * each line lands whole and in order, and an audit line is small.
 */
const sizeOf = (file: string) => (existsSync(file) ? statSync(file).size : 0);

export class AuditLog {
  /**
   * The latest RING entries, as a circular buffer: `next` is where the next one goes (and,
   * once full, the oldest). Dropping the oldest with splice() moved 10,000 slots on every
   * request, which profiling showed as the largest single cost of a proxied request.
   */
  private readonly ring: AuditEntry[] = [];
  private next = 0;
  private size = -1;
  private writes = 0;

  constructor(private readonly opts: { file?: string; max_bytes: number; keep: number }) {}

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
    const line = `${JSON.stringify(entry)}\n`;
    if (this.size < 0) mkdirSync(dirname(file), { recursive: true });
    if (this.size < 0 || ++this.writes % RESTAT_EVERY === 0) this.size = sizeOf(file);
    if (this.size > 0 && this.size + line.length > this.opts.max_bytes) {
      // Another writer may have rotated it already: only a file really full is rotated.
      this.size = sizeOf(file);
      if (this.size > 0 && this.size + line.length > this.opts.max_bytes) this.rotate(file);
    }
    appendFileSync(file, line, { mode: 0o600 });
    this.size += Buffer.byteLength(line);
  }

  private rotate(file: string): void {
    const { keep } = this.opts;
    if (existsSync(`${file}.${keep}`)) unlinkSync(`${file}.${keep}`);
    for (let i = keep - 1; i >= 1; i--) if (existsSync(`${file}.${i}`)) renameSync(`${file}.${i}`, `${file}.${i + 1}`);
    renameSync(file, `${file}.1`);
    this.size = 0;
  }

  /** Matching entries, oldest first, the latest `limit` of them: from the files when there are some, else the ring. */
  query(q: AuditQuery): AuditEntry[] {
    const all = this.opts.file ? this.readFiles(this.opts.file) : this.ringInOrder();
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
