import type { Duplex } from 'node:stream';

/**
 * Copies bytes both ways between two connected sockets until both directions are done.
 * `pipe` gives backpressure (a slow reader pauses the fast writer) and passes each half-close
 * on as it comes: the end of one direction becomes a FIN on the other side while the other
 * direction keeps flowing (both sockets need allowHalfOpen). A socket that errors or closes
 * before its peer finished sending tears the other one down too.
 */
export function relay(a: Duplex, b: Duplex, onDone?: () => void): void {
  let open = 2;
  const closed = (self: Duplex, other: Duplex) => () => {
    // A clean end was already passed on by pipe (other.end()); anything else is an abort.
    if (!self.readableEnded) other.destroy();
    if (--open === 0) onDone?.();
  };
  const failed = (other: Duplex) => () => other.destroy();
  a.on('error', failed(b));
  b.on('error', failed(a));
  a.once('close', closed(a, b));
  b.once('close', closed(b, a));
  a.pipe(b);
  b.pipe(a);
}
