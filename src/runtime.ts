import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import type { Config } from './config/types.js';
import type { Events } from './events.js';
import type { Metrics } from './metrics.js';
import { RoutingTable } from './proxy/match.js';
import type { ConnectionStore } from './store/types.js';
import type { TlsRuntime } from './tls/runtime.js';

/** A config and the routing table built from it: what one request uses from start to end. */
export interface Snapshot {
  readonly config: Config;
  readonly routes: RoutingTable;
}

export function snapshotOf(config: Config): Snapshot {
  return { config, routes: new RoutingTable(config.integrations.values()) };
}

/** Everything a request handler needs; `current` is swapped whole when the config changes. */
export interface Runtime {
  current: Snapshot;
  readonly store: ConnectionStore;
  readonly log: Logger;
  readonly agent: Dispatcher;
  /** for passthrough only: dials only addresses the egress policy allows (src/proxy/egress.ts) */
  readonly passthrough: Dispatcher;
  readonly adminToken: string;
  readonly metrics: Metrics;
  readonly tls: TlsRuntime;
  /** connection events for the webhook: `rt.events.emit({ type, entity, integration, status })` */
  readonly events: Events;
}
