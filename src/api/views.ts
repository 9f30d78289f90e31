import type { AuthDefinition } from '../config/scheme-definition.js';
import type { IntegrationConfig } from '../config/types.js';
import { waysOf } from '../oauth/offer.js';

type EntryConfig = AuthDefinition['config'];
import type { Connection } from '../store/types.js';

/** What the API shows of an integration: everything a connect form needs, no secret. */
export function integrationView(i: IntegrationConfig) {
  const linkable = new Set(waysOf(i).map((w) => w.type));
  return {
    name: i.name,
    description: i.description ?? null,
    hosts: i.hosts.map((h) => h.source),
    paths: i.paths,
    upstream: i.upstream,
    // what storing a connection checks (src/api/verify.ts); absent when nothing is
    ...(i.verify ? { verify: { method: i.verify.method, path: i.verify.path, host: i.verify.host.source, expect: i.verify.expect ?? null } } : {}),
    params: i.params.map((p) => ({ name: p.name, pattern: p.pattern ?? null, default: p.default ?? null, description: p.description ?? null })),
    schemes: i.schemes.map(({ type, traits, config }, n) => ({
      type,
      default: n === 0,
      needs_connection: traits.needsConnection,
      // How a connection is made, unchanged since 1.0 so that programs branching on it keep
      // working: through the user at the provider (a connect link), the fields by PUT, or not at
      // all. `connect_link` (1.2) adds that a link also works for field schemes: the connect
      // page's form (src/oauth/offer.ts decides which schemes it offers).
      connect: traits.connectable ? 'connect_link' : traits.needsConnection ? 'put' : 'none',
      connect_link: linkable.has(type),
      ...scopesOf(config),
      ...jwtVerifyOf(config),
      fields: traits.fields.map((f) => ({
        name: f.name,
        secret: f.secret,
        optional: f.optional,
        pattern: f.pattern?.source ?? null,
        description: f.description ?? null,
      })),
    })),
  };
}

/** The scope lists of a scheme that has them: what a connect link asks for by default, may ask for, must get. */
function scopesOf(c: EntryConfig): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const key of ['scopes', 'allowed_scopes', 'required_scopes']) {
    const v = c[key];
    if (Array.isArray(v)) out[key] = v as string[];
  }
  return out;
}

/** How a user's JWT is checked when stored (bearer, api_key with jwt_verify): what a form can tell the user. */
function jwtVerifyOf(c: EntryConfig) {
  const v = c.jwt_verify as Record<string, string> | undefined;
  if (!v) return {};
  const list = (s: string | undefined, sep: RegExp) => (s === undefined ? null : s.split(sep).map((x) => x.trim()).filter(Boolean));
  return {
    jwt_verify: {
      key: v.jwks_url !== undefined ? 'jwks_url' : 'public_key',
      jwks_url: v.jwks_url ?? null,
      issuer: v.issuer ?? null,
      audience: list(v.audience, /,/),
      algorithms: list(v.algorithms, /[\s,]+/),
    },
  };
}

/** What the API shows of a connection: which fields are present, never their values. */
export function connectionView(c: Connection) {
  return {
    entity: c.entity,
    integration: c.integration,
    // null: the default connection, the one a request without X-Connection-Label uses
    label: c.label ?? null,
    scheme: c.scheme,
    params: c.params,
    status: c.status,
    reason: c.reason ?? null,
    fields: Object.keys(c.credentials).sort(),
    expires_at: c.expires_at === undefined ? null : new Date(c.expires_at).toISOString(),
    refreshed_at: c.refreshed_at === undefined ? null : new Date(c.refreshed_at).toISOString(),
    scopes: c.scopes ?? null,
    created_at: new Date(c.created_at).toISOString(),
    updated_at: new Date(c.updated_at).toISOString(),
  };
}
