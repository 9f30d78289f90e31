import { open } from 'node:fs/promises';

/** How much of a file one read takes, from its end towards its start. */
export const TAIL_CHUNK_BYTES = 65_536;

/**
 * How far out of time order lines may be within the files: several writers (credproxy start
 * --workers) append whole batches, each up to AUDIT_FLUSH_MS (200 ms) after its first line,
 * so a line may follow lines up to that much newer. Reading goes this far past the point
 * where it could stop, so such a line is not missed.
 */
export const ORDER_SLACK_MS = 2_000;

/**
 * The lines of a file from the last to the first, read backwards in chunks: a query for the
 * latest entries reads the end of the files, not all of them. Lines are split on the newline
 * byte, so a multi-byte character is never cut. A missing file has no lines.
 */
export async function* linesBackwards(path: string, chunkBytes = TAIL_CHUNK_BYTES): AsyncGenerator<string> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch {
    return;
  }
  try {
    let pos = (await fh.stat()).size;
    // the bytes before the first newline of the chunk after this one: the end of a line that starts earlier
    let carry = Buffer.alloc(0);
    while (pos > 0) {
      const len = Math.min(chunkBytes, pos);
      pos -= len;
      const chunk = Buffer.alloc(len);
      const { bytesRead } = await fh.read(chunk, 0, len, pos);
      const data = Buffer.concat([chunk.subarray(0, bytesRead), carry]);
      let end = data.length;
      for (let i = data.length - 1; i >= 0; i--) {
        if (data[i] !== 0x0a) continue;
        if (end > i + 1) yield data.toString('utf8', i + 1, end);
        end = i;
      }
      carry = data.subarray(0, end);
    }
    if (carry.length > 0) yield carry.toString('utf8');
  } finally {
    await fh.close();
  }
}

/**
 * The latest `limit` entries that match, oldest first, from `files` (newest file first, as
 * rotation names them: audit.log, audit.log.1, …). Reading stops once `limit` entries match
 * and the lines reach ORDER_SLACK_MS before the oldest of them, or once they reach
 * ORDER_SLACK_MS before `since`; a torn line (a crash mid-write) is skipped. Lines are any
 * JSON with a `time` (the audit log's entries), so this reader knows nothing of the writer.
 */
export async function readTail<E extends { time: string }>(files: readonly string[], q: { matches: (e: E) => boolean; limit: number; since?: number }): Promise<E[]> {
  const hits: E[] = [];
  let stopBefore = q.since === undefined ? -Infinity : q.since - ORDER_SLACK_MS;
  let oldestHit = Infinity;
  outer: for (const file of files) {
    for await (const line of linesBackwards(file)) {
      let e: E;
      try {
        e = JSON.parse(line) as E;
      } catch {
        continue;
      }
      const t = Date.parse(e.time);
      if (t < stopBefore) break outer;
      if (!q.matches(e)) continue;
      hits.push(e);
      if (t < oldestHit) oldestHit = t;
      if (hits.length === q.limit) stopBefore = Math.max(stopBefore, oldestHit - ORDER_SLACK_MS);
    }
  }
  // Several writers append whole batches, not single lines: order by time.
  hits.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
  return hits.slice(-q.limit);
}
