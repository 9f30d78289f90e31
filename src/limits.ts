import type { IncomingMessage, Server, ServerOptions } from 'node:http';
import type { Settings } from './config/types.js';
import { CredproxyError } from './errors.js';

type Limits = Settings['limits'];

/** node:http options that carry the `limits:` settings (documented in docs/security.md). */
export function serverOptions(limits: Limits): ServerOptions {
  return {
    headersTimeout: limits.request_header_timeout_ms,
    // Bodies may take their time (uploads); only the header section is on the clock.
    requestTimeout: 0,
    keepAliveTimeout: limits.keep_alive_timeout_ms,
    maxHeaderSize: limits.header_bytes,
    // The target of a proxied request is its request line (absolute form), never Host; node
    // would otherwise answer a Host-less HTTP/1.1 request with a bare 400 of its own that
    // bypasses the documented error format.
    requireHostHeader: false,
    // node checks the header timeout on this interval; a check far coarser than the timeout
    // itself would let a slow client hold its connection for up to 30 s longer.
    connectionsCheckingInterval: Math.max(10, Math.min(1000, Math.floor(limits.request_header_timeout_ms / 4))),
  };
}

/** Applies the limits node:http takes as properties rather than options. */
export function applyServerLimits(server: Server, limits: Limits): void {
  server.maxConnections = limits.max_connections;
  // node silently drops header fields beyond maxHeadersCount; one over the limit lets
  // `headerCountError` tell an overlong request from one exactly at the limit and refuse it,
  // rather than forward it with headers missing.
  server.maxHeadersCount = limits.header_count + 1;
}

/** The 431 for a request with more header fields than `header_count`, else undefined. */
export function headerCountError(req: IncomingMessage, limits: Limits): CredproxyError | undefined {
  if (req.rawHeaders.length / 2 <= limits.header_count) return undefined;
  return new CredproxyError('headers_too_large', `more than ${limits.header_count} header fields`);
}

/**
 * Counts open CONNECT tunnels against `limits.max_tunnels`, and each client's against
 * `limits.max_tunnels_per_client`, so one client cannot take every slot. The CONNECT handler
 * takes a slot before it answers 200 and gives it back when the tunnel closes.
 */
export class TunnelGate {
  private open = 0;
  private readonly byClient = new Map<string, number>();
  constructor(
    private readonly max: () => number,
    private readonly perClient: () => number = () => Infinity,
  ) {}

  get count(): number {
    return this.open;
  }

  /** open tunnels of one client */
  countOf(client: string): number {
    return this.byClient.get(client) ?? 0;
  }

  /**
   * Returns the slot's release function (safe to call twice). Over either limit it throws 429
   * `rate_limited` with Retry-After: the nearest documented answer to "too busy, come back".
   * `client` names who asks (client key, entity token, or address); without it only the
   * global limit applies.
   */
  acquire(client?: string): () => void {
    const mine = client === undefined ? 0 : this.countOf(client);
    if (client !== undefined && mine >= this.perClient()) {
      throw new CredproxyError('rate_limited', `this client has ${this.perClient()} tunnels open (limits.max_tunnels_per_client); try again later`, { 'retry-after': '1' });
    }
    if (this.open >= this.max()) {
      throw new CredproxyError('rate_limited', `more than ${this.max()} tunnels are open; try again later`, { 'retry-after': '1' });
    }
    this.open++;
    if (client !== undefined) this.byClient.set(client, mine + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.open--;
      if (client === undefined) return;
      const left = this.countOf(client) - 1;
      if (left > 0) this.byClient.set(client, left);
      else this.byClient.delete(client);
    };
  }
}

/** Bytes held in replay buffers across all requests of one instance. */
export class ReplayBudget {
  private used = 0;
  constructor(private readonly max: () => number) {}

  get bytes(): number {
    return this.used;
  }

  /** Takes `n` bytes if they fit; false (and nothing taken) if not. */
  take(n: number): boolean {
    if (this.used + n > this.max()) return false;
    this.used += n;
    return true;
  }

  release(n: number): void {
    this.used = Math.max(0, this.used - n);
  }
}
