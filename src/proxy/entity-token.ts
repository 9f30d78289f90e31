import type { IntegrationConfig } from '../config/types.js';
import { CredproxyError } from '../errors.js';
import type { KeyValue } from '../store/types.js';
import { TOKEN_LIKE, verifyToken, type EntityToken } from '../tokens/entity-tokens.js';
import { presentedKey } from './client-auth.js';
import type { Identity } from './identify.js';

/** The `cpx_…` token a Proxy-Authorization carries (the Basic password, or Bearer), if any. */
export function proxyEntityToken(header: string | undefined): string | undefined {
  const key = presentedKey(header);
  return key !== undefined && key.startsWith('cpx_') ? key : undefined;
}

/** What a request looks like once the entity token it carried is taken off it. */
export interface TokenUse {
  token: EntityToken;
  rawHeaders: readonly string[];
  pathWithSearch: string;
}

const deny = (message: string) => new CredproxyError('entity_denied', `${message}; nothing was forwarded`);

/** `s` form-decoded; a string with no `%` or `+` is returned as it is, without the work. */
function decoded(s: string): string {
  if (!s.includes('%') && !s.includes('+')) return s;
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}

/** The token-looking string in a header or query value, also inside `Basic base64(user:cpx_…)`. */
function carried(value: string): string | undefined {
  // Most values hold neither: the regular expressions run only where one could match.
  if (value.includes('cpx_')) {
    const m = TOKEN_LIKE.exec(value);
    if (m) return m[0];
  }
  if (!mayBeBasic(value)) return undefined;
  const b = /^\s*basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(value);
  return b ? TOKEN_LIKE.exec(Buffer.from(b[1]!, 'base64').toString('utf8'))?.[0] : undefined;
}

/**
 * Whether `value` could start `basic` after white space: its first character is a `b`, or
 * white space (every character `\s` matches is ≤ U+0020 or ≥ U+0080), or one that decodes
 * to it (`+`, `%`).
 */
function mayBeBasic(value: string): boolean {
  const c = value.charCodeAt(0);
  return c === 0x62 || c === 0x42 || c <= 0x20 || c >= 0x80 || c === 0x2b || c === 0x25;
}

/**
 * Where an integration's credential goes: the header and query names its schemes inject, and
 * Authorization always (the signing schemes write it). An entity token is accepted only
 * there, since that is what an SDK fills from its API-key variable and what credproxy replaces.
 */
const replacedCache = new WeakMap<IntegrationConfig, { headers: Set<string>; query: Set<string> }>();
function replaced(integration: IntegrationConfig): { headers: Set<string>; query: Set<string> } {
  let r = replacedCache.get(integration);
  if (!r) {
    r = { headers: new Set(['authorization']), query: new Set() };
    for (const s of integration.schemes) {
      for (const h of s.inject.headers) r.headers.add(h.lower);
      for (const q of s.inject.query) r.query.add(q.name);
    }
    replacedCache.set(integration, r);
  }
  return r;
}

function checkScope(token: EntityToken, integration: IntegrationConfig | undefined): void {
  if (integration && token.integrations && !token.integrations.includes(integration.name)) {
    throw deny(`the entity token is not valid for integration "${integration.name}"`);
  }
}

/**
 * Finds entity tokens in a request. A `cpx_…` value is taken (and removed) only from a header
 * or query parameter the owning integration replaces; anywhere else, or on a host no
 * integration owns, the request is refused: an entity token never leaves credproxy. All the
 * tokens a request carries, Proxy-Authorization's included (verified by the caller), must
 * name the same entity and cover the integration. Returns undefined when the request carries none.
 */
export function takeEntityToken(
  kv: KeyValue,
  rawHeaders: readonly string[],
  pathWithSearch: string,
  integration: IntegrationConfig | undefined,
  proxyToken: EntityToken | undefined,
): Promise<TokenUse | undefined> | TokenUse | undefined {
  const where = integration ? replaced(integration) : undefined;
  const found = new Set<string>();
  let headers: string[] | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const tok = carried(rawHeaders[i + 1]!);
    // Proxy-Authorization's token is the caller's to verify (and that header never goes upstream).
    const lower = tok === undefined ? '' : name.toLowerCase();
    if (tok === undefined || lower === 'proxy-authorization') {
      headers?.push(name, rawHeaders[i + 1]!);
      continue;
    }
    if (!where?.headers.has(lower)) {
      throw deny(integration
        ? `an entity token (cpx_…) is accepted only in the header the integration replaces or in Proxy-Authorization, not in ${name}`
        : 'an entity token (cpx_…) is never sent to a host that no integration owns');
    }
    found.add(tok);
    headers ??= rawHeaders.slice(0, i);
  }
  const q = pathWithSearch.indexOf('?');
  const path = q === -1 ? pathWithSearch : pathWithSearch.slice(0, q);
  if (carried(decoded(path))) throw deny('an entity token (cpx_…) in the path is never forwarded');
  let search = q === -1 ? undefined : pathWithSearch.slice(q + 1);
  // An escape can spell `cpx_` too (`%63px_…`): such a query is decoded and looked through as well.
  if (search !== undefined && (search.includes('cpx') || search.includes('%'))) {
    const kept: string[] = [];
    for (const pair of search.split('&')) {
      const eq = pair.indexOf('=');
      const tok = carried(decoded(pair));
      if (tok === undefined) {
        kept.push(pair);
        continue;
      }
      if (!where?.query.has(decoded(eq === -1 ? pair : pair.slice(0, eq)))) {
        throw deny(integration
          ? 'an entity token (cpx_…) is accepted only in the query parameter the integration replaces'
          : 'an entity token (cpx_…) is never sent to a host that no integration owns');
      }
      found.add(tok);
    }
    search = kept.join('&');
  }
  if (found.size > 1) throw deny('the request carries several different entity tokens');
  const [presented] = found;
  if (presented === undefined) {
    if (!proxyToken) return undefined;
    checkScope(proxyToken, integration);
    return { token: proxyToken, rawHeaders, pathWithSearch };
  }
  // Only a request that carries a token waits for the store; the rest answer synchronously.
  return verifyToken(kv, presented).then((token) => {
    if (proxyToken && proxyToken.entity !== token.entity) throw deny('the entity tokens in the request name different entities');
    checkScope(token, integration);
    if (proxyToken) checkScope(proxyToken, integration);
    return { token, rawHeaders: headers ?? rawHeaders, pathWithSearch: search === undefined ? path : `${path}?${search}` };
  });
}

/** The verified entity token of a Proxy-Authorization; 403 entity_denied for a forged, expired or revoked one. */
export async function verifyProxyToken(kv: KeyValue, header: string | undefined): Promise<EntityToken | undefined> {
  const text = proxyEntityToken(header);
  return text === undefined ? undefined : verifyToken(kv, text);
}

/**
 * The connection label of a request: a token bound to a label decides it (the header may
 * repeat it, never name another); otherwise the X-Connection-Label header's, if any.
 */
export function labelWithToken(header: string | undefined, use: TokenUse | undefined): string | undefined {
  const bound = use?.token.label;
  if (bound === undefined) return header;
  if (header !== undefined && header !== bound) throw deny(`the entity token is for the connection labelled "${bound}", not "${header}"`);
  return bound;
}

/** The token names the entity; an entity header that names another one is refused, not guessed at. */
export function entityWithToken(identity: Identity, use: TokenUse | undefined): string | undefined {
  if (!use) return identity.entity;
  if (identity.via === 'header' && identity.entity !== use.token.entity) {
    throw deny('the entity header names another entity than the entity token');
  }
  return use.token.entity;
}
