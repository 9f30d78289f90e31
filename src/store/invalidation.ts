/**
 * How instances sharing a store tell each other that a cached connection changed. The
 * embedded store has one process and needs none; Redis uses pub/sub (redis-invalidation.ts).
 */
export interface Invalidation {
  /** tells the other instances that `key` changed (this instance already dropped its copy) */
  publish(key: string): Promise<void>;
  /**
   * `onKey` for each key another instance changed; `onReset` when messages may have been missed.
   * Resolves once the first attempt to listen is over (listening or not), so that an instance
   * can start live instead of emptying a cache it already filled when the channel comes up.
   */
  subscribe(onKey: (key: string) => void, onReset: () => void): Promise<void>;
  /** true while messages are being received: only then may a cached entry be trusted */
  readonly live: boolean;
  close(): Promise<void>;
}
