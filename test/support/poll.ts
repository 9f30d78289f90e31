import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Polls `check` every 25 ms until it holds or `withinMs` has passed (default 1 s, the
 * cross-instance coherence contract). Returns whether it came to hold: the bound is the
 * contract, not a measurement of speed.
 */
export async function pollUntil(check: () => Promise<boolean> | boolean, withinMs = 1_000): Promise<boolean> {
  const until = Date.now() + withinMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= until) return false;
    await sleep(25);
  }
}
