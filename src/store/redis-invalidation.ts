import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Invalidation } from './invalidation.js';
import type { RedisCommander } from './redis-lock.js';

/** The part of a node-redis client the subscriber side uses. */
export interface RedisSubscriber {
  readonly isReady: boolean;
  on(event: 'ready' | 'end' | 'reconnecting', listener: () => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  subscribe(channel: string, listener: (message: string) => void): Promise<void>;
  destroy(): void;
}

/**
 * Cache invalidation over Redis pub/sub: after a write or delete, an instance publishes the
 * key on `<prefix>:invalidate`; every other instance drops its cached copy. The subscriber
 * is a connection of its own (a subscribed connection can issue no other command). While
 * it is down messages are lost, so the cache is not trusted (`live` false) and is emptied
 * whenever the subscription (re)starts.
 */
export class RedisInvalidation implements Invalidation {
  private readonly channel: string;
  /** tells this instance's own messages apart from the others' */
  private readonly id = randomBytes(8).toString('hex');
  private subscribed = false;

  constructor(
    private readonly publisher: RedisCommander,
    private readonly subscriber: RedisSubscriber,
    prefix: string,
    private readonly log: Logger,
  ) {
    this.channel = `${prefix}:invalidate`;
  }

  get live(): boolean {
    return this.subscribed && this.subscriber.isReady;
  }

  async publish(key: string): Promise<void> {
    await this.publisher.sendCommand(['PUBLISH', this.channel, `${this.id}\n${key}`]);
  }

  subscribe(onKey: (key: string) => void, onReset: () => void): Promise<void> {
    const lost = () => {
      if (this.subscribed) this.log.warn('store: cache invalidation channel lost; serving connections from the store until it is back');
      this.subscribed = false;
      onReset();
    };
    this.subscriber.on('error', lost);
    this.subscriber.on('end', lost);
    this.subscriber.on('reconnecting', lost);
    // node-redis resubscribes before it reports 'ready' again; whatever changed in between
    // was missed, so start from an empty cache.
    this.subscriber.on('ready', () => {
      if (!this.subscribed) onReset();
      this.subscribed = true;
    });
    return this.subscriber
      .subscribe(this.channel, (message) => {
        const nl = message.indexOf('\n');
        if (nl < 0 || message.slice(0, nl) === this.id) return;
        onKey(message.slice(nl + 1));
      })
      .then(() => {
        this.subscribed = true;
      })
      .catch((err: unknown) => {
        this.log.error({ err }, 'store: could not subscribe to cache invalidations');
      });
  }

  async close(): Promise<void> {
    this.subscribed = false;
    this.subscriber.destroy();
  }
}
