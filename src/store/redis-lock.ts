import { lockToken, type LockBackend, type LockHandle } from './lock.js';

/** The few commands the lock needs; any connected node-redis client has them. */
export interface RedisCommander {
  sendCommand<T = unknown>(args: string[]): Promise<T>;
}

// Delete only if the value is still ours: a holder whose lock expired and was taken by
// another instance must not release that instance's lock.
const RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

/**
 * Locks shared by every instance on one Redis: SET key <random> NX PX <ttl> to take,
 * compare-and-delete to release. An instance that dies while holding one delays the others
 * by at most the ttl. (Single Redis node, as credproxy deploys it; no Redlock quorum.)
 */
export class RedisLockBackend implements LockBackend {
  constructor(private readonly redis: RedisCommander, private readonly prefix: string) {}

  async tryAcquire(name: string, ttlMs: number): Promise<LockHandle | undefined> {
    const key = `${this.prefix}:lock:${name}`;
    const token = lockToken();
    const ok = await this.redis.sendCommand(['SET', key, token, 'NX', 'PX', String(Math.max(1, Math.round(ttlMs)))]);
    if (ok !== 'OK') return undefined;
    return {
      name,
      token,
      held: async () => (await this.redis.sendCommand(['GET', key])) === token,
      release: async () => Number(await this.redis.sendCommand(['EVAL', RELEASE, '1', key, token])) === 1,
    };
  }
}
