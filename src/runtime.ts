import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import type { AuditLog } from './audit/audit-log.js';
import { openAudit } from './audit/record.js';
import { SchemeSet, type LiveIntegration } from './auth/scheme-set.js';
import type { Config } from './config/types.js';
import type { Events } from './events.js';
import { ReplayBudget, TunnelGate } from './limits.js';
import type { Metrics } from './metrics.js';
import { newRefreshState, type RefreshState } from './oauth/refresh-state.js';
import { authenticatorFor, type ClientAuthenticator } from './proxy/client-auth.js';
import { RoutingTable } from './proxy/match.js';
import { WriteBack } from './store/locked-update.js';
import type { ConnectionStore } from './store/types.js';
import { NewLeafLimiter } from './tls/leaf-rate.js';
import type { TlsRuntime } from './tls/runtime.js';

/** A config and what is built from it: what one request uses from start to end. */
export interface Snapshot {
  readonly config: Config;
  /** the integrations with their schemes (rt.schemes keeps those whose definition did not change) */
  readonly integrations: ReadonlyMap<string, LiveIntegration>;
  readonly routes: RoutingTable<LiveIntegration>;
  /** who may use the proxy (`clients`); null when anyone may */
  readonly clients: ClientAuthenticator | null;
}

/** The snapshot of `config`, its schemes built (or kept) by the runtime's scheme set. */
export function snapshotOf(config: Config, schemes: SchemeSet): Snapshot {
  const integrations = schemes.build(config);
  return { config, integrations, routes: new RoutingTable(integrations.values()), clients: authenticatorFor(config.settings) };
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
  /** the scheme catalog and the scheme instances built from the config's definitions */
  readonly schemes: SchemeSet;
  /**
   * The state this instance keeps between requests, made with the runtime (instanceState)
   * and closed with it (closeRuntime); nothing of it lives in module-level maps.
   * The audit writer is replaced when a reload changes `audit.*` (src/audit/record.ts).
   */
  audit: AuditLog;
  /** this instance's last config reload (src/reload.ts); absent before the first one */
  lastReload?: { at: number; trigger: string; ok: boolean; problems: string[] };
  readonly refresh: RefreshState;
  /** refresh results the store could not take, retried until it answers (store/locked-update.ts) */
  readonly writeBack: WriteBack;
  /** open CONNECT tunnels against `limits.max_tunnels` (read live, so a reload applies) */
  readonly tunnels: TunnelGate;
  /** bytes held in replay buffers across all requests, against `limits.replay_budget_bytes` */
  readonly replayBudget: ReplayBudget;
  /** new intercepted names per client per second, against `limits.new_leaves_per_second` */
  readonly newLeaves: NewLeafLimiter;
}

/** The per-instance state of a new runtime; `current` is read when needed, so a reload applies. */
export function instanceState(
  config: Config,
  store: ConnectionStore,
  log: Logger,
  current: () => Snapshot,
): Pick<Runtime, 'audit' | 'refresh' | 'writeBack' | 'tunnels' | 'replayBudget' | 'newLeaves'> {
  return {
    audit: openAudit(config.settings.audit, log),
    refresh: newRefreshState(),
    writeBack: new WriteBack(store, log),
    tunnels: new TunnelGate(
      () => current().config.settings.limits.max_tunnels,
      () => current().config.settings.limits.max_tunnels_per_client,
    ),
    replayBudget: new ReplayBudget(() => current().config.settings.limits.replay_budget_bytes),
    newLeaves: new NewLeafLimiter(() => current().config.settings.limits.new_leaves_per_second),
  };
}

/** Ends what the runtime owns, in order: pending audit lines and write-backs, events, pools, store. */
export async function closeRuntime(rt: Runtime): Promise<void> {
  await rt.audit.close();
  rt.writeBack.close();
  await rt.events.close();
  await rt.agent.close();
  await rt.passthrough.close();
  await rt.store.close();
}
