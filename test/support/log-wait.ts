import type { LogCapture } from './servers.js';

/**
 * Resolves true when a log line matching `re` has been written (already, or later), false
 * once `withinMs` has passed without one: tests wait on what the code says it did, with an
 * explicit deadline, rather than on its internals or the clock.
 */
export function logLine(logs: LogCapture, re: RegExp, withinMs = 5_000): Promise<boolean> {
  if (logs.lines.some((l) => re.test(l))) return Promise.resolve(true);
  return new Promise((resolve) => {
    const onLine = (line: string) => {
      if (!re.test(line)) return;
      done(true);
    };
    const timer = setTimeout(() => done(false), withinMs);
    const done = (v: boolean) => {
      clearTimeout(timer);
      logs.off('line', onLine);
      resolve(v);
    };
    logs.on('line', onLine);
  });
}
