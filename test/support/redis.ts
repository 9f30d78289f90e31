import { randomBytes } from 'node:crypto';
import { createClient } from '@keyv/redis';
import { TcpRelay } from './relay.js';

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

/** A relay in front of the machine's Redis (see TcpRelay): `url` is Redis's through it. */
export class RedisRelay extends TcpRelay {
  constructor() {
    super(6379);
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }
}
