import { randomBytes } from 'node:crypto';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { createClient } from '@keyv/redis';

/** The machine's Redis (.ci/run starts one when none answers). */
export const REDIS_URL = 'redis://127.0.0.1:6379';

/** A store_prefix no other test run uses, so runs never see each other's keys. */
export function uniquePrefix(): string {
  return `credproxy-test-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/** Deletes every key under `<prefix>:` (the test's only footprint in Redis). */
export async function cleanPrefix(prefix: string): Promise<number> {
  const c = createClient({ url: REDIS_URL });
  await c.connect();
  let n = 0;
  try {
    for await (const keys of c.scanIterator({ MATCH: `${prefix}:*`, COUNT: 500 })) {
      if (keys.length > 0) n += await c.del(keys);
    }
  } finally {
    c.destroy();
  }
  return n;
}

/** Raw Redis access for assertions (what is really stored, and under which key). */
export async function redisKeys(prefix: string): Promise<string[]> {
  const c = createClient({ url: REDIS_URL });
  await c.connect();
  try {
    const out: string[] = [];
    for await (const keys of c.scanIterator({ MATCH: `${prefix}:*`, COUNT: 500 })) out.push(...keys);
    return out.sort();
  } finally {
    c.destroy();
  }
}

/**
 * A TCP relay in front of the real Redis, so a test can make Redis unreachable for the
 * process under test (`cut`) and bring it back (`restore`) without touching the server
 * other tests and helpers use. `stall` keeps connections open but stops forwarding (a
 * paused or black-holed Redis).
 */
export class RedisRelay {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private stalled = false;
  port = 0;

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    await this.listen();
    return this;
  }

  /** every open connection dropped, new ones refused */
  async cut(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    for (const sock of this.sockets) sock.destroy();
    this.sockets.clear();
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }

  /** listening again on the same port */
  async restore(): Promise<void> {
    this.stalled = false;
    if (!this.server) await this.listen();
  }

  /** connections stay open, nothing is forwarded either way */
  stall(): void {
    this.stalled = true;
    for (const sock of this.sockets) sock.pause();
  }

  async close(): Promise<void> {
    await this.cut();
  }

  private listen(): Promise<void> {
    const server = net.createServer((client) => {
      const upstream = net.connect(6379, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => {
          this.sockets.delete(s);
          client.destroy();
          upstream.destroy();
        });
        if (this.stalled) s.pause();
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => {
        this.port = (server.address() as AddressInfo).port;
        resolve();
      });
    });
  }
}
