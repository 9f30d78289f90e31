import type { Settings } from './types.js';

/**
 * When a change to a credproxy.yaml setting takes effect: `live` on the next reload (the
 * request path reads `rt.current`, or the reloader applies it), `restart` when it is read
 * once at start (the socket, the store, the pools, the CA). One table, used by the reloader
 * (src/reload.ts) and checked by test/config/apply.test.ts against every key of the
 * schema and against "Reloading the config" in docs/operations.md.
 */
export const SETTINGS_APPLY = {
  listen: 'restart', // the socket is bound once
  public_url: 'live',
  entity_header: 'live',
  store: 'restart', // opened once
  store_prefix: 'restart',
  admin_token: 'restart',
  clients: 'live', // each snapshot has its own authenticator
  allow_unauthenticated: 'restart', // checked against `listen` at start
  passthrough: 'live',
  'egress.allow_private': 'live',
  'tls.intercept': 'restart', // the CA and the leaf cache are made at start
  'tls.ca_dir': 'restart',
  'tls.upstream_ca': 'restart', // part of the upstream pools
  'connect.allowed_redirects': 'live',
  'connect.frame_ancestors': 'live', // read by each connect page
  'ui.enabled': 'live', // read by each dashboard request
  'limits.replay_body_bytes': 'live',
  'limits.admin_body_bytes': 'live',
  'limits.upstream_connect_timeout_ms': 'restart', // the pools' connect timeout
  'limits.upstream_response_timeout_ms': 'live',
  'limits.requests_per_minute': 'live',
  // applied to the server and the upstream pools when they are created
  'limits.header_bytes': 'restart',
  'limits.header_count': 'restart',
  'limits.request_header_timeout_ms': 'restart',
  'limits.keep_alive_timeout_ms': 'restart',
  'limits.upstream_keep_alive_timeout_ms': 'restart',
  'limits.max_connections': 'restart',
  'limits.max_tunnels': 'live',
  'limits.max_tunnels_per_client': 'live',
  'limits.new_leaves_per_second': 'live',
  'limits.body_idle_ms': 'live',
  'limits.replay_budget_bytes': 'live',
  'limits.shutdown_grace_ms': 'restart',
  'events.webhook_url': 'live',
  'events.secret': 'live',
  'log.level': 'live', // the reloader sets the logger's level
  'metrics.requests': 'live', // the reloader turns the per-request series off or on (src/metrics.ts)
  // the reloader swaps the audit writer (src/audit/record.ts)
  'audit.enabled': 'live',
  'audit.file': 'live',
  'audit.max_bytes': 'live',
  'audit.keep': 'live',
} as const satisfies Record<string, 'live' | 'restart'>;

export type SettingsKey = keyof typeof SETTINGS_APPLY;

export const RESTART_ONLY = (Object.keys(SETTINGS_APPLY) as SettingsKey[]).filter((k) => SETTINGS_APPLY[k] === 'restart');

/** The value at a key path (`limits.max_tunnels`); undefined where a section is absent. */
export function settingAt(s: Settings, key: string): unknown {
  let v: unknown = s;
  for (const part of key.split('.')) v = v === undefined || v === null ? undefined : (v as Record<string, unknown>)[part];
  return v;
}

/** The keys among `keys` whose value differs between two settings. */
export function changedKeys(a: Settings, b: Settings, keys: readonly string[]): string[] {
  return keys.filter((k) => JSON.stringify(settingAt(a, k)) !== JSON.stringify(settingAt(b, k)));
}

/** `next` with the value of `running` at each of `keys` (both levels of a dotted key are copied, never changed in place). */
export function withValuesOf(next: Settings, running: Settings, keys: readonly string[]): Settings {
  const out: Record<string, unknown> = { ...next };
  for (const key of keys) {
    const [head, tail] = key.split('.') as [string, string | undefined];
    if (tail === undefined) {
      out[head] = settingAt(running, head);
      continue;
    }
    const section: Record<string, unknown> = { ...(out[head] as Record<string, unknown> | undefined) };
    const value = settingAt(running, key);
    if (value === undefined) delete section[tail];
    else section[tail] = value;
    out[head] = section;
  }
  return out as unknown as Settings;
}
