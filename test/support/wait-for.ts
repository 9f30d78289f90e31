import type { EventEmitter } from 'node:events';

/**
 * Resolves true when `emitter` emits `event`, false once `withinMs` has passed without it:
 * a test waits on what happened, with a deadline, so a behaviour that breaks fails the test
 * instead of hanging it until tap's own timeout.
 */
export function waitFor(emitter: EventEmitter, event: string, withinMs = 10_000): Promise<boolean> {
  return within(new Promise<void>((resolve) => emitter.once(event, () => resolve())), withinMs);
}

/** Resolves true if `p` settles within `withinMs`, false if not (a rejection counts as settled). */
export function within(p: Promise<unknown>, withinMs = 10_000): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), withinMs);
    const done = () => {
      clearTimeout(timer);
      resolve(true);
    };
    p.then(done, done);
  });
}
