import { createHash } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';

/**
 * Helpers for large-body tests: bodies are generated and consumed as streams, so the test
 * itself never holds a large buffer and the memory it measures is the proxy's.
 */

const CHUNK = 64 * 1024;
/** One 64 KiB block, pushed again and again; never mutated, so reusing it allocates nothing. */
const BLOCK = Buffer.alloc(CHUNK, 0).map((_b, i) => (i * 31 + 7) & 0xff);

/** `total` bytes of a fixed pattern, produced on demand (with backpressure). */
export function patternStream(total: number): Readable {
  let left = total;
  return new Readable({
    read() {
      if (left <= 0) return void this.push(null);
      const n = Math.min(left, CHUNK);
      left -= n;
      this.push(n === CHUNK ? BLOCK : BLOCK.subarray(0, n));
    },
  });
}

/** Size and sha256 of a stream, consumed chunk by chunk. */
export async function digestOf(stream: AsyncIterable<Buffer>): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of stream) {
    bytes += chunk.length;
    hash.update(chunk);
  }
  return { bytes, sha256: hash.digest('hex') };
}

/** An upstream that does not buffer: the handler streams as it likes. */
export async function startStreamingUpstream(handler: (req: IncomingMessage, res: ServerResponse) => void) {
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Samples this process's memory until stopped; returns the largest growth over the baseline. */
export function memoryWatch() {
  const base = process.memoryUsage();
  let maxRss = base.rss;
  let maxHeap = base.heapUsed;
  const sample = () => {
    const m = process.memoryUsage();
    maxRss = Math.max(maxRss, m.rss);
    maxHeap = Math.max(maxHeap, m.heapUsed);
  };
  const timer = setInterval(sample, 5);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return { rssGrowth: maxRss - base.rss, heapGrowth: maxHeap - base.heapUsed };
    },
  };
}
