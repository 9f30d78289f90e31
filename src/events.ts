import { createHmac, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { request, type Dispatcher } from 'undici';
import { egressAgent } from './proxy/egress.js';
import type { Settings } from './config/types.js';
import type { Metrics } from './metrics.js';
import type { ConnectionStatus } from './store/types.js';

/** The event types (DESIGN.md, Events contract). */
export const EVENT_TYPES = [
  'connection.active',
  'connection.expired',
  'connection.failed',
  'connection.refresh_failed',
  'connection.recovered',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/**
 * The event a status change means: the store wrapper (store/observed.ts) emits these for
 * every write that changes a status, whoever wrote it (admin API, OAuth callback, refresh).
 * `connection.refresh_failed` and `connection.recovered` are not status changes: the refresh
 * code emits them itself.
 */
export const STATUS_EVENTS: Partial<Record<ConnectionStatus, EventType>> = {
  active: 'connection.active',
  expired: 'connection.expired',
  failed: 'connection.failed',
};

/** What a caller hands to emit(); id and time are added here. */
export interface EventInput {
  type: EventType;
  entity: string;
  integration: string;
  /** which of the entity's connections to the integration; absent for the default one */
  label?: string;
  status: ConnectionStatus;
  /** why, in words (a provider's error code, …); never a secret */
  reason?: string;
}

/** Where code that only announces events sends them (the refresh code gets this, not the whole Events). */
export interface EventSink {
  emit(input: EventInput): void;
}

/** The body POSTed to the webhook (contract). */
export interface ConnectionEvent extends EventInput {
  id: string;
  at: string;
}

export interface EventOptions {
  /** the current events settings; read at delivery, so a reload takes effect at once */
  settings: () => Settings['events'];
  log: Logger;
  metrics: Metrics;
  /** events waiting beyond this are dropped, oldest first (a receiver down for long must not eat memory) */
  maxQueue?: number;
  /** attempts per event, the first included */
  attempts?: number;
  /** first retry delay; doubles per attempt up to maxDelayMs */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** per attempt */
  timeoutMs?: number;
}

/** `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` (contract). */
export function signature(secret: string, body: string, t: number): string {
  return `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;
}

/**
 * Connection events delivered to an optional webhook. emit() only queues and returns: a
 * proxied request or an admin call never waits for the receiver. One worker delivers the
 * queue in order, retrying each event with exponential backoff; the queue is bounded.
 *
 * For other parts of credproxy it is one line: `rt.events.emit({ type: 'connection.expired',
 * entity, integration, status: 'expired', reason: 'invalid_grant' })`.
 */
export class Events implements EventSink {
  private readonly queue: ConnectionEvent[] = [];
  private inFlight: ConnectionEvent | undefined;
  private running = false;
  private closed = false;
  private readonly agent: Dispatcher;
  private wake: (() => void) | undefined;
  private readonly opts: Required<Omit<EventOptions, 'settings' | 'log' | 'metrics'>>;
  private idle: Promise<void> = Promise.resolve();
  private warnedUnsigned = false;
  /** cuts an attempt in flight short on close() */
  private readonly abort = new AbortController();

  constructor(private readonly o: EventOptions) {
    this.opts = {
      maxQueue: o.maxQueue ?? 1000,
      attempts: o.attempts ?? 8,
      baseDelayMs: o.baseDelayMs ?? 1000,
      maxDelayMs: o.maxDelayMs ?? 60_000,
      timeoutMs: o.timeoutMs ?? 10_000,
    };
    // Its own pool: a slow receiver never takes sockets from proxied traffic.
    // The receiver is the operator's choice (events.webhook_url): resolved and pinned like every other way out, not range-checked.
    this.agent = egressAgent({ chooser: 'operator', timeout: this.opts.timeoutMs, connections: 4, keepAliveTimeout: 10_000 });
  }

  /** Queues an event; returns at once. Without `events.webhook_url` it does nothing. */
  emit(input: EventInput): void {
    if (this.closed || !this.o.settings()?.webhook_url) return;
    const event: ConnectionEvent = { id: `evt_${randomUUID()}`, type: input.type, at: new Date().toISOString(), entity: input.entity, integration: input.integration, status: input.status };
    if (input.label !== undefined) event.label = input.label;
    if (input.reason !== undefined) event.reason = input.reason;
    if (this.queue.length >= this.opts.maxQueue) {
      const dropped = this.queue.shift()!;
      this.o.metrics.events.inc({ type: dropped.type, outcome: 'dropped' });
      this.o.log.warn({ event: dropped.id, type: dropped.type }, 'event queue full: dropped the oldest waiting event');
    }
    this.queue.push(event);
    if (!this.running) {
      this.running = true;
      this.idle = this.drain();
    }
  }

  /** Events waiting or in delivery. */
  get pending(): number {
    return this.queue.length + (this.inFlight ? 1 : 0);
  }

  /** Resolves when the queue is empty (tests, shutdown). */
  settled(): Promise<void> {
    return this.idle;
  }

  /** Stops delivery: waiting events are dropped (and logged), a retry wait is cut short. */
  async close(): Promise<void> {
    this.closed = true;
    this.wake?.();
    this.abort.abort();
    await this.idle;
    const left = this.queue.length + (this.inFlight ? 1 : 0);
    if (left > 0) this.o.log.warn({ dropped: left }, 'events not delivered before shutdown');
    this.queue.length = 0;
    await this.agent.close();
  }

  private async drain(): Promise<void> {
    try {
      while (!this.closed && this.queue.length > 0) {
        const event = this.queue.shift()!;
        this.inFlight = event;
        const ok = await this.deliver(event);
        this.o.metrics.events.inc({ type: event.type, outcome: ok ? 'delivered' : 'failed' });
      }
    } finally {
      this.inFlight = undefined;
      this.running = false;
    }
  }

  private async deliver(event: ConnectionEvent): Promise<boolean> {
    const body = JSON.stringify(event);
    for (let attempt = 1; attempt <= this.opts.attempts && !this.closed; attempt++) {
      const settings = this.o.settings();
      if (!settings?.webhook_url) return false;
      const problem = await this.post(settings.webhook_url, settings.secret, body, event);
      if (problem === undefined) return true;
      if (this.closed) return false;
      const delay = Math.min(this.opts.maxDelayMs, this.opts.baseDelayMs * 2 ** (attempt - 1));
      const last = attempt === this.opts.attempts;
      this.o.log.warn({ event: event.id, type: event.type, attempt, problem, retry_in_ms: last ? null : delay }, last ? 'event delivery failed; giving up' : 'event delivery failed; will retry');
      if (!last) await this.sleep(delay);
    }
    return false;
  }

  /** One attempt; a problem in words, or undefined when the receiver answered 2xx. */
  private async post(url: string, secret: string | undefined, body: string, event: ConnectionEvent): Promise<string | undefined> {
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': 'credproxy-webhook',
      'x-credproxy-event': event.type,
    };
    if (secret) headers['x-credproxy-signature'] = signature(secret, body, Math.floor(Date.now() / 1000));
    else if (!this.warnedUnsigned) {
      this.warnedUnsigned = true;
      this.o.log.warn('events.secret is not set: webhooks are sent unsigned');
    }
    try {
      const res = await request(url, {
        method: 'POST',
        headers,
        body,
        dispatcher: this.agent,
        signal: this.abort.signal,
        headersTimeout: this.opts.timeoutMs,
        bodyTimeout: this.opts.timeoutMs,
      });
      await res.body.dump();
      return res.statusCode >= 200 && res.statusCode < 300 ? undefined : `the receiver answered ${res.statusCode}`;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      timer.unref();
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }
}
