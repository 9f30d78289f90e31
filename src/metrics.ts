import { Counter, Gauge, Registry, collectDefaultMetrics, type Metric } from 'prom-client';

/** Methods kept as their own label value; anything else is "OTHER", so a client cannot grow the label set. */
const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** The method label of a request: a bounded set, whatever the client sends. */
export function methodClass(method: string | undefined): string {
  const m = (method ?? '').toUpperCase();
  return KNOWN_METHODS.has(m) ? m : 'OTHER';
}

/** `2xx`, `4xx`, …; `0xx` for a request that got no status at all. */
export const statusClass = (status: number) => STATUS_CLASSES[Math.floor(status / 100)] ?? `${Math.floor(status / 100)}xx`;
const STATUS_CLASSES = ['0xx', '1xx', '2xx', '3xx', '4xx', '5xx'];

/** One exposed sample, in the shape prom-client's own metrics give the registry. */
interface Sample {
  labels: Record<string, string | number>;
  sharedLabels?: Record<string, string>;
  value: number;
  metricName?: string;
  exemplar?: null;
}

/**
 * The per-request counter and histograms keep their values in plain cells, found by a Map
 * lookup per label (cellFor); prom-client's registry reads them when scraped, and formats
 * them as it does its own. prom-client's inc() and observe() build a label object, validate it and hash it to
 * a string key on every call: four times per proxied request. The exposition is the same.
 */
abstract class RequestPathMetric<L extends string, C> {
  readonly aggregator = 'sum';
  abstract readonly type: 'counter' | 'histogram';

  constructor(
    readonly name: string,
    readonly help: string,
    protected readonly labelNames: readonly L[],
    registry: Registry,
  ) {
    // The registry only reads name, help, type, aggregator, get() and reset().
    registry.registerMetric(this as unknown as Metric);
  }

  /**
   * The cell of a label set, made by `make` the first time. Cells are found through one Map
   * per label, keyed by that label's value: the values are strings the request path already
   * holds (an integration's name, a method, a status class), whose hashes V8 keeps, where a
   * key joined from them would be a new string to flatten and hash on every request.
   */
  protected cellFor(labels: Readonly<Record<L, string>>, make: () => C): C {
    const names = this.labelNames;
    let level = this.tree;
    for (let i = 0; i < names.length - 1; i++) {
      const value = labels[names[i]!];
      let next = level.get(value) as Map<string, unknown> | undefined;
      if (next === undefined) level.set(value, (next = new Map()));
      level = next;
    }
    const last = labels[names[names.length - 1]!];
    let cell = level.get(last) as C | undefined;
    if (cell === undefined) {
      cell = make();
      level.set(last, cell);
      this.cells.push(cell);
    }
    return cell;
  }

  private tree = new Map<string, unknown>();
  /** every cell, in the order made: what a scrape reads */
  protected cells: C[] = [];

  protected clearCells(): void {
    this.tree = new Map();
    this.cells = [];
  }

  protected labelsOf(labels: Readonly<Record<L, string>>): Record<string, string> {
    const out: Record<string, string> = {};
    for (const n of this.labelNames) out[n] = labels[n];
    return out;
  }

  protected abstract samples(): Sample[];
  abstract reset(): void;

  /** For the text exposition (the registry prefers it to get()). */
  getForPromString(): Promise<{ name: string; help: string; type: string; values: Sample[]; aggregator: string }> {
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, values: this.samples(), aggregator: this.aggregator });
  }

  /** For getMetricsAsJSON (cluster aggregation): shared labels folded into each sample's own, as prom-client does. */
  async get(): Promise<{ name: string; help: string; type: string; values: Sample[]; aggregator: string }> {
    const data = await this.getForPromString();
    data.values = data.values.map(({ sharedLabels, labels, ...rest }) => ({ ...rest, labels: { ...labels, ...sharedLabels } }));
    return data;
  }
}

interface CounterCell {
  labels: Record<string, string>;
  value: number;
}

interface HistogramCell {
  labels: Record<string, string>;
  buckets: number[];
  sum: number;
  count: number;
}

export class RequestCounter<L extends string> extends RequestPathMetric<L, CounterCell> {
  readonly type = 'counter';
  inc(labels: Readonly<Record<L, string>>, value = 1): void {
    this.cellFor(labels, () => ({ labels: this.labelsOf(labels), value: 0 })).value += value;
  }

  protected samples(): Sample[] {
    return this.cells.map((c) => ({ value: c.value, labels: c.labels }));
  }

  reset(): void {
    this.clearCells();
  }
}

export class RequestHistogram<L extends string> extends RequestPathMetric<L, HistogramCell> {
  readonly type = 'histogram';
  constructor(name: string, help: string, labelNames: readonly L[], private readonly upperBounds: readonly number[], registry: Registry) {
    super(name, help, labelNames, registry);
  }

  observe(labels: Readonly<Record<L, string>>, value: number): void {
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`);
    const cell = this.cellFor(labels, () => ({ labels: this.labelsOf(labels), buckets: this.upperBounds.map(() => 0), sum: 0, count: 0 }));
    const bounds = this.upperBounds;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= bounds[i]!) {
        cell.buckets[i]!++;
        break;
      }
    }
    cell.sum += value;
    cell.count++;
  }

  /** As prom-client writes a histogram: cumulative buckets, +Inf, sum, count for each label set. */
  protected samples(): Sample[] {
    const bucket = `${this.name}_bucket`;
    const out: Sample[] = [];
    for (const c of this.cells) {
      let acc = 0;
      this.upperBounds.forEach((le, i) => {
        acc += c.buckets[i]!;
        out.push({ labels: { le }, sharedLabels: c.labels, value: acc, metricName: bucket, exemplar: null });
      });
      out.push(
        { labels: { le: '+Inf' }, sharedLabels: c.labels, value: c.count, metricName: bucket, exemplar: null },
        { labels: {}, sharedLabels: c.labels, value: c.sum, metricName: `${this.name}_sum` },
        { labels: {}, sharedLabels: c.labels, value: c.count, metricName: `${this.name}_count` },
      );
    }
    return out;
  }

  reset(): void {
    this.clearCells();
  }
}

const CONNECTION_STATUSES = ['initiated', 'active', 'expired', 'failed'] as const;

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * Prometheus metrics, one registry per running instance (tests run several in one process).
 * Other parts of credproxy increment these directly (`rt.metrics.refreshes.inc({...})`); the
 * "Metrics" table of docs/operations.md lists them.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly requests = new RequestCounter(
    'credproxy_requests_total',
    'Proxied requests by integration (or "passthrough"), method (GET, POST, …, OTHER) and status class (2xx, …)',
    ['integration', 'method', 'status'] as const,
    this.registry,
  );
  readonly upstreamSeconds = new RequestHistogram(
    'credproxy_request_duration_seconds',
    'Time from request to the end of the response, through the proxy',
    ['integration'] as const,
    LATENCY_BUCKETS,
    this.registry,
  );
  readonly upstreamLatency = new RequestHistogram(
    'credproxy_upstream_latency_seconds',
    'Time from sending a request upstream to its response headers',
    ['integration'] as const,
    LATENCY_BUCKETS,
    this.registry,
  );
  /**
   * `metrics.requests`: whether the three series above, updated on every proxied request,
   * are kept. The request path reads this one boolean before it touches them; change it
   * with setRequestMetrics(), never directly, so the registry agrees with it.
   */
  readonly requestsOn: boolean = true;
  /** the series `metrics.requests` turns off: each costs a little on every proxied request (docs/performance.md) */
  private readonly perRequest: ReadonlyArray<RequestCounter<string> | RequestHistogram<string>> = [this.requests, this.upstreamSeconds, this.upstreamLatency];
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
  readonly replayUnbuffered = new Counter({
    name: 'credproxy_replay_unbuffered_total',
    help: 'Request bodies streamed unbuffered (so never replayed) because limits.replay_budget_bytes was spent',
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
  readonly storeSeconds = new RequestHistogram(
    'credproxy_store_duration_seconds',
    'Connection store operations (get is usually served from the in-memory cache)',
    ['op'] as const,
    [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    this.registry,
  );
  readonly storeErrors = new Counter({
    name: 'credproxy_store_errors_total',
    help: 'Connection store operations that failed',
    labelNames: ['op'] as const,
    registers: [this.registry],
  });
  /** Incremented where a 503 store_unavailable is answered (src/store/failure.ts), with the failed operation. */
  readonly storeFailures = new Counter({
    name: 'credproxy_store_failures_total',
    help: 'Answers of 503 store_unavailable, by the store operation that failed',
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

  /**
   * Turns the per-request series on or off (`metrics.requests`, at start and on a reload).
   * Off, they leave the registry, so a scrape (and the sum over --workers) has no line of
   * theirs rather than values frozen at the moment they stopped; on again, they come back
   * from zero. Cells written meanwhile by requests already in flight are cleared with them.
   */
  setRequestMetrics(on: boolean): void {
    if (on === this.requestsOn) return;
    (this as { requestsOn: boolean }).requestsOn = on;
    for (const metric of this.perRequest) {
      metric.reset();
      if (on) this.registry.registerMetric(metric as unknown as Metric);
      else this.registry.removeSingleMetric(metric.name);
    }
  }
}
