import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Methods kept as their own label value; anything else is "OTHER", so a client cannot grow the label set. */
const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** The method label of a request: a bounded set, whatever the client sends. */
export function methodClass(method: string | undefined): string {
  const m = (method ?? '').toUpperCase();
  return KNOWN_METHODS.has(m) ? m : 'OTHER';
}

/** `2xx`, `4xx`, …; `0xx` for a request that got no status at all. */
export const statusClass = (status: number) => `${Math.floor(status / 100)}xx`;

const CONNECTION_STATUSES = ['initiated', 'active', 'expired', 'failed'] as const;

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * Prometheus metrics, one registry per running instance (tests run several in one process).
 * Other parts of credproxy increment these directly (`rt.metrics.refreshes.inc({...})`); the
 * README's "Metrics" table lists them.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'credproxy_requests_total',
    help: 'Proxied requests by integration (or "passthrough"), method (GET, POST, …, OTHER) and status class (2xx, …)',
    labelNames: ['integration', 'method', 'status'] as const,
    registers: [this.registry],
  });
  readonly upstreamSeconds = new Histogram({
    name: 'credproxy_request_duration_seconds',
    help: 'Time from request to the end of the response, through the proxy',
    labelNames: ['integration'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly upstreamLatency = new Histogram({
    name: 'credproxy_upstream_latency_seconds',
    help: 'Time from sending a request upstream to its response headers',
    labelNames: ['integration'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  /** outcome: ok | invalid_grant | error (the oauth code increments it) */
  readonly refreshes = new Counter({
    name: 'credproxy_refreshes_total',
    help: 'OAuth token refreshes by integration and outcome (ok, invalid_grant, error)',
    labelNames: ['integration', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly replays = new Counter({
    name: 'credproxy_replays_total',
    help: 'Requests replayed once after a refresh triggered by a refresh_on status',
    labelNames: ['integration'] as const,
    registers: [this.registry],
  });
  /** Where the connection counts come from (set by the observed store); read once per scrape. */
  countConnections: (() => Promise<Readonly<Record<string, number>>>) | undefined;
  /** Set from counts kept on writes (store/observed.ts) when scraped: one read, never a scan of the store. */
  readonly connections = new Gauge({
    name: 'credproxy_connections',
    help: 'Stored connections by status, counted as connections are written and deleted',
    labelNames: ['status'] as const,
    registers: [this.registry],
    // Every worker under --workers reads the same shared counts: summing them would multiply.
    aggregator: 'max',
    collect: async () => {
      if (!this.countConnections) return;
      try {
        const counts = await this.countConnections();
        for (const status of CONNECTION_STATUSES) this.connections.set({ status }, counts[status] ?? 0);
      } catch {
        // A store that does not answer is already visible in credproxy_store_errors_total
        // and /readyz; the scrape still answers with the last known values.
      }
    },
  });
  readonly storeSeconds = new Histogram({
    name: 'credproxy_store_duration_seconds',
    help: 'Connection store operations (get is usually served from the in-memory cache)',
    labelNames: ['op'] as const,
    buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [this.registry],
  });
  readonly storeErrors = new Counter({
    name: 'credproxy_store_errors_total',
    help: 'Connection store operations that failed',
    labelNames: ['op'] as const,
    registers: [this.registry],
  });
  /** The CONNECT code increments on open and decrements on close. */
  readonly openTunnels = new Gauge({
    name: 'credproxy_open_tunnels',
    help: 'CONNECT tunnels currently open',
    registers: [this.registry],
  });
  readonly reloads = new Counter({
    name: 'credproxy_config_reloads_total',
    help: 'Config reloads by outcome (ok, invalid)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly events = new Counter({
    name: 'credproxy_events_total',
    help: 'Connection events by type and outcome (delivered, failed, dropped)',
    labelNames: ['type', 'outcome'] as const,
    registers: [this.registry],
  });

  constructor(defaults = false) {
    if (defaults) collectDefaultMetrics({ register: this.registry });
    this.reloads.inc({ outcome: 'ok' }, 0);
  }
}
