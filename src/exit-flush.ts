/** Something holding lines in memory that must reach their file before the process ends. */
export interface SyncFlushable {
  /** writes what is pending, synchronously ('exit' handlers cannot wait) */
  flushSync(): void;
}

/** Weak, so a writer nobody uses any more is garbage-collected rather than kept for the hook. */
const live = new Set<WeakRef<SyncFlushable>>();
let hooked = false;

/**
 * Flushes `writer` when the process exits (process.exit, the end of the event loop, an
 * uncaught exception): the batched request log and the batched audit log both gather lines
 * in memory for up to 200 ms, and one exit hook writes them all.
 */
export function flushAtExit(writer: SyncFlushable): void {
  for (const ref of live) if (ref.deref() === undefined) live.delete(ref);
  live.add(new WeakRef(writer));
  if (hooked) return;
  hooked = true;
  process.once('exit', () => {
    for (const ref of live) ref.deref()?.flushSync();
  });
}
