import { createHmac, timingSafeEqual } from 'node:crypto';
import type { ConnectionEvent } from '../../src/events.js';
import { startUpstream, type Seen, type Upstream } from './servers.js';
import { Waiter } from './waiter.js';

/** What a receiver does to check a delivery: the documented recipe (DESIGN "Events"), written out. */
export function verifySignature(seen: Seen, secret: string): boolean {
  const header = String(seen.headers['x-credproxy-signature'] ?? '');
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header);
  if (!m) return false;
  const expected = createHmac('sha256', secret).update(`${m[1]}.${seen.body.toString('utf8')}`).digest();
  return timingSafeEqual(expected, Buffer.from(m[2]!, 'hex'));
}

export interface Receiver {
  server: Upstream;
  /** deliveries answered 2xx, in order */
  deliveries: Waiter<Seen>;
  /** answers every delivery held so far and all later ones at once */
  release(): void;
  /** the events received and accepted so far, parsed */
  events(): ConnectionEvent[];
}

/** A webhook receiver on a loopback port; with `held`, it answers nothing until release(). */
export async function startReceiver(opts: { held?: boolean } = {}): Promise<Receiver> {
  const deliveries = new Waiter<Seen>();
  const accepted: Seen[] = [];
  let release: () => void = () => {};
  const gate = opts.held ? new Promise<void>((r) => (release = r)) : Promise.resolve();
  const server = await startUpstream((_req, res, body) => {
    const seen = { ...server.seen.at(-1)!, body };
    void gate.then(() => {
      res.writeHead(204).end();
      accepted.push(seen);
      deliveries.push(seen);
    });
  });
  return {
    server,
    deliveries,
    release: () => release(),
    events: () => accepted.map((s) => JSON.parse(s.body.toString()) as ConnectionEvent),
  };
}
