import type { HostPattern } from './hosts.js';
import type { AuthDefinition } from './scheme-definition.js';

/**
 * Host templates (`{{subdomain}}.zendesk.com`): a parameter fills exactly one DNS label, so
 * no value can add a dot, a port, a path, user information or anything else that would make
 * the template name another host than the one it reads as.
 */

/** One DNS label as a parameter may supply it: lower-case, no leading or trailing hyphen. */
export const HOST_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const LABEL_SOURCE = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
const NAME = /\{\{([a-z_][a-z0-9_]*)\}\}/g;

export interface CompiledHostTemplate {
  /** anchored; one capture group per `{{name}}`, in order */
  regex: RegExp;
  names: string[];
}

/** The matcher for one templated host; literal parts are escaped, each param matches one label. */
export function compileHostTemplate(host: string): CompiledHostTemplate {
  const names: string[] = [];
  let source = '^';
  let last = 0;
  for (const m of host.matchAll(NAME)) {
    source += escape(host.slice(last, m.index));
    source += `(${LABEL_SOURCE})`;
    names.push(m[1]!);
    last = m.index + m[0].length;
  }
  source += `${escape(host.slice(last))}$`;
  return { regex: new RegExp(source), names };
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The params a template host was filled with, or undefined when the host does not fit it. */
export function matchHostTemplate(t: CompiledHostTemplate, hostname: string): Record<string, string> | undefined {
  const m = t.regex.exec(hostname);
  if (!m) return undefined;
  const values: Record<string, string> = {};
  for (let i = 0; i < t.names.length; i++) {
    const name = t.names[i]!;
    const v = m[i + 1]!;
    // The same param twice (`{{a}}.{{a}}.example`) must have one value.
    if (values[name] !== undefined && values[name] !== v) return undefined;
    values[name] = v;
  }
  return values;
}

/** The host a connection's params produce from a template; undefined when one is missing. */
export function renderHost(host: string, params: Readonly<Record<string, string>>): string | undefined {
  let missing = false;
  const out = host.replace(NAME, (_, name: string) => {
    const v = params[name];
    if (v === undefined) missing = true;
    return v ?? '';
  });
  return missing ? undefined : out;
}

/** The authority of a templated URL (`https://{{sub}}.example.com:8443/x` → `{{sub}}.example.com:8443`). */
function authorityOf(url: string): string {
  const rest = url.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  const end = rest.search(/[/?#]/);
  return end === -1 ? rest : rest.slice(0, end);
}

/** The URL keys a scheme names in its traits, with their values in its entry. */
function urlsOf(d: Pick<AuthDefinition, 'config'>, keys: readonly string[]): Array<{ key: string; url: string }> {
  const out: Array<{ key: string; url: string }> = [];
  for (const key of keys) {
    const v = d.config[key];
    if (typeof v === 'string') out.push({ key, url: v });
  }
  return out;
}

/**
 * The params that name a host somewhere: in `hosts`, or in the authority of a URL a scheme
 * declares in `hostUrlKeys` (authorize_url, token_url: a value there would choose where a
 * code or secret is sent). Their values must be single DNS labels.
 */
export function hostParamNames(hosts: readonly HostPattern[], schemes: ReadonlyArray<Pick<AuthDefinition, 'config' | 'traits'>>): Set<string> {
  const names = new Set<string>();
  for (const h of hosts) if (h.template) for (const m of h.host.matchAll(NAME)) names.add(m[1]!);
  for (const d of schemes) {
    for (const { url } of urlsOf(d, d.traits.hostUrlKeys)) for (const m of authorityOf(url).matchAll(NAME)) names.add(m[1]!);
  }
  return names;
}

/**
 * `{{name}}`s in the URL templates a scheme fills from params alone (`paramUrlKeys`: the
 * OAuth schemes, src/oauth/client-config.ts withParams), for the config check that each is a
 * declared param. Schemes that may also name entity and fields there check their own.
 */
export function urlTemplateNames(d: Pick<AuthDefinition, 'config' | 'traits'>): Array<{ key: string; name: string }> {
  const out: Array<{ key: string; name: string }> = [];
  for (const { key, url } of urlsOf(d, d.traits.paramUrlKeys)) {
    for (const m of url.matchAll(/\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g)) out.push({ key, name: m[1]! });
  }
  return out;
}
