import type { AuthConfig } from './types.js';
import type { HostPattern } from './hosts.js';

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

/** The URL keys of the schemes whose templates may name params. */
const URL_KEYS = ['authorize_url', 'token_url'] as const;

/**
 * The params that name a host somewhere: in `hosts`, or in the authority of a scheme's
 * authorize_url or token_url (a value there would choose where a code or secret is sent).
 * Their values must be single DNS labels.
 */
export function hostParamNames(hosts: readonly HostPattern[], auth: readonly AuthConfig[]): Set<string> {
  const names = new Set<string>();
  for (const h of hosts) if (h.template) for (const m of h.host.matchAll(NAME)) names.add(m[1]!);
  for (const a of auth) {
    for (const key of URL_KEYS) {
      const v = a[key];
      if (typeof v === 'string') for (const m of authorityOf(v).matchAll(NAME)) names.add(m[1]!);
    }
  }
  return names;
}

/** The schemes whose URL templates are filled from params alone (src/oauth/client-config.ts withParams). */
const PARAM_URL_TYPES = new Set(['oauth2', 'oauth2_client_credentials']);

/**
 * `{{name}}`s in the URL templates of the OAuth schemes, for the config check that each is a
 * declared param (jwt_bearer checks its own token_url, which may also name entity and fields).
 */
export function urlTemplateNames(auth: AuthConfig): Array<{ key: string; name: string }> {
  const out: Array<{ key: string; name: string }> = [];
  if (!PARAM_URL_TYPES.has(auth.type)) return out;
  for (const key of URL_KEYS) {
    const v = auth[key];
    if (typeof v === 'string') for (const m of v.matchAll(/\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g)) out.push({ key, name: m[1]! });
  }
  return out;
}
