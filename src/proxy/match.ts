import type { IntegrationConfig } from '../config/types.js';
import type { HostPattern } from '../config/hosts.js';

interface Route {
  integration: IntegrationConfig;
  pattern: HostPattern;
  path: string;
}

/**
 * Which integration owns a host (and path). Built once per config, then a lookup is one
 * map access plus a scan of the few path prefixes of that host. Matching is exact:
 * `api.example.com` never matches `api.example.com.evil.test` or `evilapi.example.com`;
 * only an explicit `*.example.com` owns subdomains.
 */
export class RoutingTable {
  private readonly exact = new Map<string, Route[]>();
  private readonly wildcards: Route[] = [];
  readonly templates: Route[] = [];

  constructor(integrations: Iterable<IntegrationConfig>) {
    for (const integration of integrations) {
      for (const pattern of integration.hosts) {
        for (const path of integration.paths) {
          const route = { integration, pattern, path };
          if (pattern.template) this.templates.push(route);
          else if (pattern.wildcard) this.wildcards.push(route);
          else {
            const key = routeKey(pattern.host, pattern.port);
            const list = this.exact.get(key) ?? [];
            list.push(route);
            this.exact.set(key, list);
          }
        }
      }
    }
    // Longest path prefix first, so /v2/admin wins over /v2 and / on the same host.
    for (const list of this.exact.values()) list.sort(byPathLength);
    this.wildcards.sort(byPathLength);
  }

  /** `port` is undefined when the request used its scheme's default port. */
  match(hostname: string, port: number | undefined, path: string): Route | undefined {
    const found = this.lookup(hostname, port, path, () => true);
    if (found || port === undefined) return found;
    // `http://api.example.com:443/` names the default port of an `upstream: https`
    // integration (and `:80` that of an http one): the same origin as no port at all.
    return this.lookup(hostname, undefined, path, (r) => DEFAULT_PORT[r.integration.upstream] === port);
  }

  private lookup(hostname: string, port: number | undefined, path: string, fits: (r: Route) => boolean): Route | undefined {
    for (const r of this.exact.get(routeKey(hostname, port)) ?? []) {
      if (fits(r) && pathMatches(r.path, path)) return r;
    }
    for (const r of this.wildcards) {
      if (r.pattern.port === port && fits(r) && hostname.endsWith(`.${r.pattern.host}`) && pathMatches(r.path, path)) return r;
    }
    return undefined;
  }

  /** Whether an integration owns the host on any path: decides whether a CONNECT tunnel is terminated. */
  owns(hostname: string, port: number | undefined): boolean {
    if (this.exact.has(routeKey(hostname, port))) return true;
    return this.wildcards.some((r) => r.pattern.port === port && hostname.endsWith(`.${r.pattern.host}`));
  }
}

const DEFAULT_PORT = { http: 80, https: 443 } as const;
const routeKey = (host: string, port: number | undefined) => (port === undefined ? host : `${host}:${port}`);
const byPathLength = (a: Route, b: Route) => b.path.length - a.path.length;

/** Segment-aware: `/v1` owns `/v1` and `/v1/x`, not `/v1x`. */
export function pathMatches(prefix: string, path: string): boolean {
  if (prefix === '/') return true;
  return path === prefix || (path.startsWith(prefix) && (path[prefix.length] === '/' || path[prefix.length] === '?'));
}
