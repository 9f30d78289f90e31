import { isIP } from 'node:net';
import type { IntegrationConfig } from '../config/types.js';
import type { HostPattern } from '../config/hosts.js';
import { compileHostTemplate, matchHostTemplate, type CompiledHostTemplate } from '../config/host-template.js';
import { pathMatches } from '../config/paths.js';

export { pathMatches };

/** `I`: the integration as the table's owner holds it (the runtime's carries its schemes). */
export interface Route<I extends IntegrationConfig = IntegrationConfig> {
  integration: I;
  pattern: HostPattern;
  path: string;
  /**
   * For a host template: the param values the request's host was built from. The credential
   * step injects only from a connection whose params produce exactly this host.
   */
  hostParams?: Readonly<Record<string, string>>;
}

interface TemplateRoute<I extends IntegrationConfig> extends Route<I> {
  compiled: CompiledHostTemplate;
}

/**
 * Which integration owns a host (and path). Built once per config, then a lookup is one
 * map access plus a scan of the few path prefixes of that host. Matching is exact:
 * `api.example.com` never matches `api.example.com.evil.test` or `evilapi.example.com`;
 * only an explicit `*.example.com` owns subdomains. A host template owns the hosts its params
 * can produce, each param being one DNS label: `{{sub}}.zendesk.com` owns `acme.zendesk.com`,
 * never `a.b.zendesk.com` or `zendesk.com.evil.test`. Exact hosts win over wildcards, and
 * wildcards over templates.
 */
export class RoutingTable<I extends IntegrationConfig = IntegrationConfig> {
  private readonly exact = new Map<string, Array<Route<I>>>();
  private readonly wildcards: Array<Route<I>> = [];
  private readonly templates: Array<TemplateRoute<I>> = [];

  constructor(integrations: Iterable<I>) {
    for (const integration of integrations) {
      for (const pattern of integration.hosts) {
        for (const path of integration.paths) {
          const route = { integration, pattern, path };
          if (pattern.template) this.templates.push({ ...route, compiled: compileHostTemplate(pattern.host) });
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
    this.templates.sort(byPathLength);
  }

  /** `port` is undefined when the request used its scheme's default port. */
  match(hostname: string, port: number | undefined, path: string): Route<I> | undefined {
    const found = this.lookup(hostname, port, path, () => true);
    if (found || port === undefined) return found;
    // `http://api.example.com:443/` names the default port of an `upstream: https`
    // integration (and `:80` that of an http one): the same origin as no port at all.
    return this.lookup(hostname, undefined, path, (r) => DEFAULT_PORT[r.integration.upstream] === port);
  }

  private lookup(hostname: string, port: number | undefined, path: string, fits: (r: Route<I>) => boolean): Route<I> | undefined {
    for (const r of this.exact.get(routeKey(hostname, port)) ?? []) {
      if (fits(r) && pathMatches(r.path, path)) return r;
    }
    for (const r of this.wildcards) {
      if (r.pattern.port === port && fits(r) && hostname.endsWith(`.${r.pattern.host}`) && pathMatches(r.path, path)) return r;
    }
    for (const r of this.templates) {
      if (r.pattern.port !== port || !fits(r) || !pathMatches(r.path, path)) continue;
      const hostParams = matchHostTemplate(r.compiled, hostname);
      if (hostParams) return { integration: r.integration, pattern: r.pattern, path: r.path, hostParams };
    }
    return undefined;
  }

  /** Whether an integration owns the host on any path: decides whether a CONNECT tunnel is terminated. */
  owns(hostname: string, port: number | undefined): boolean {
    if (this.exact.has(routeKey(hostname, port))) return true;
    if (this.wildcards.some((r) => r.pattern.port === port && hostname.endsWith(`.${r.pattern.host}`))) return true;
    return this.templates.some((r) => r.pattern.port === port && matchHostTemplate(r.compiled, hostname) !== undefined);
  }

  /**
   * The name of the leaf certificate for an owned host: `*.parent` when a wildcard
   * (`*.parent`) or a template whose params are all in its first label (`{{sub}}.parent`)
   * owns it one label below `parent`, so that every name there shares one signature; else
   * the host itself.
   * A wildcard certificate covers exactly one label (RFC 6125 §6.4.3), so `a.b.parent` gets
   * its own; and never one for a parent of a single label (`*.com` is no valid certificate).
   */
  leafName(hostname: string): string {
    const dot = hostname.indexOf('.');
    const parent = hostname.slice(dot + 1);
    if (dot <= 0 || !parent.includes('.') || isIP(hostname) !== 0) return hostname;
    if (this.wildcards.some((r) => r.pattern.host === parent)) return `*.${parent}`;
    // The template's literal rest is `parent` itself, so its params can only fill the first label.
    const oneLabel = this.templates.some((r) => r.pattern.host.endsWith(`.${parent}`) && !r.pattern.host.slice(0, -parent.length - 1).includes('.') && matchHostTemplate(r.compiled, hostname));
    return oneLabel ? `*.${parent}` : hostname;
  }
}

const DEFAULT_PORT = { http: 80, https: 443 } as const;
const routeKey = (host: string, port: number | undefined) => (port === undefined ? host : `${host}:${port}`);
const byPathLength = (a: Route, b: Route) => b.path.length - a.path.length;
