import ipaddr from 'ipaddr.js';
import type { SchemeCatalog } from './scheme-definition.js';
import { bool, int, list, map, obj, oneOf, str, type ObjectSpec, type Spec } from './spec.js';

/**
 * The shapes of credproxy.yaml and of an integration file. Every key DESIGN.md shows is
 * accepted here, even where its behaviour arrives later, so configs written today keep
 * loading; unknown keys are errors, so typos never pass silently.
 */

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const ENTITY_PATTERN = /^(\*|[A-Za-z0-9][A-Za-z0-9._:@+*-]{0,255})$/;

const url = (schemes: readonly string[] = ['http', 'https']) =>
  str({
    check: (v) => {
      try {
        const u = new URL(v);
        if (!schemes.includes(u.protocol.slice(0, -1))) return `"${v}" must be a ${schemes.join(' or ')} URL`;
        return undefined;
      } catch {
        return `"${v}" is not a URL`;
      }
    },
  });

/** URLs with `{{param}}` templates cannot be parsed until the params are known. */
const templatedUrl = () =>
  str({ check: (v) => (/^https?:\/\/\S+$/.test(v) ? undefined : `"${v}" is not an http(s) URL`) });

const regex = () =>
  str({
    check: (v) => {
      try {
        new RegExp(v);
        return undefined;
      } catch (e) {
        return `not a valid regular expression (${(e as Error).message})`;
      }
    },
  });

const inject = obj({
  headers: map(str(), { keyPattern: HEADER_NAME, keyHint: 'a valid header name' }),
  query: map(str(), { keyPattern: /^[^\s&=#]+$/, keyHint: 'a valid query parameter name' }),
});

const field = oneOf(
  'a field name or a mapping with name, pattern, description, secret, optional, docs_url',
  str({ pattern: /^[A-Za-z_][A-Za-z0-9_]*$/, hint: 'a field name (letters, digits, _)' }),
  obj(
    {
      name: str({ pattern: /^[A-Za-z_][A-Za-z0-9_]*$/, hint: 'a field name (letters, digits, _)' }),
      pattern: regex(),
      description: str(),
      secret: bool(),
      optional: bool(),
      // The connect page's "Where do I find this?" link.
      docs_url: url(['https', 'http']),
    },
    ['name'],
  ),
);

// Pieces the schemes' own schema entries (src/auth/*.ts) are built from.
export const scopes = list(str({ minLength: 1 }));
export const stringMap = map(str());
export const headerMap = map(str(), { keyPattern: HEADER_NAME, keyHint: 'a valid header name' });
export const privateKey = () => str({ multiline: true });
export { templatedUrl };

/** The keys every `auth` entry takes, whatever its type. */
export const common = { type: str(), inject, fields: list(field) };

/** The `auth` mapping: one variant per scheme in the catalog, chosen by `type`. */
const authSpec = (catalog: SchemeCatalog): Spec => {
  const variants: Record<string, ObjectSpec> = {};
  for (const [type, def] of Object.entries(catalog)) variants[type] = def.spec;
  return { kind: 'tagged', tag: 'type', variants };
};

/** An integration file, with the `auth` variants of the schemes in `catalog`. */
export const integrationSpecFor = (catalog: SchemeCatalog): ObjectSpec => {
  const auth = authSpec(catalog);
  return obj(
    {
      name: str({ pattern: /^[a-z0-9_-]+$/, hint: 'a name of lower-case letters, digits, _ and -' }),
      description: str(),
      // How the connect page presents the integration to end users.
      display: obj({ name: str({ minLength: 1 }), logo_url: url(['https', 'http']), logo_file: str({ minLength: 1 }), docs_url: url(['https', 'http']) }),
      hosts: list(str({ minLength: 1 }), 1),
      upstream: str({ enum: ['https', 'http'] }),
      paths: list(str({ pattern: /^\//, hint: 'a path prefix starting with /' }), 1),
      params: list(
        obj(
          {
            name: str({ pattern: /^[a-z_][a-z0-9_]*$/, hint: 'a parameter name (lower-case letters, digits, _)' }),
            pattern: regex(),
            default: str(),
            description: str(),
          },
          ['name'],
        ),
      ),
      auth: oneOf('an auth mapping or a list of them', auth, list(auth, 1)),
      refresh_on: list(int(400, 599), 1),
      inject,
      // A request run with the credentials when a connection is stored (src/api/verify.ts).
      verify: obj(
        {
          method: str({ enum: ['GET', 'HEAD', 'POST'] }),
          path: str({ pattern: /^\/[^\s#]*$/, hint: 'a path starting with / (a query may follow)' }),
          expect: list(int(100, 599), 1),
          host: str({ minLength: 1 }),
        },
        ['path'],
      ),
      // `credproxy env`/`run` set this variable to an entity token, so SDKs that insist on a key start.
      limits: obj({ requests_per_minute: int(1, 10_000_000) }),
      scrub_responses: bool(),
      placeholder_env: str({ pattern: /^[A-Za-z_][A-Za-z0-9_]*$/, hint: 'an environment variable name' }),
    },
    ['hosts', 'auth'],
  );
};

const listenSpec = str({
  check: (v) => {
    const m = /^(\[[0-9a-fA-F:]+\]|[^:[\]]+):(\d{1,5})$/.exec(v);
    if (!m) return `"${v}" is not host:port`;
    // Checked here, at the value's line, so it is reported with every other problem.
    return Number(m[2]) > 65535 ? `port ${m[2]} is out of range (0 to 65535)` : undefined;
  },
});

/**
 * One source of CSP `frame-ancestors`: `'self'`, or an http(s) origin, its host possibly
 * `*.`-wildcarded (https://*.example.com). Nothing else: a path, a bare `*` or a stray `;`
 * would widen or break the policy.
 */
export function frameAncestorProblem(v: string): string | undefined {
  if (v === "'self'") return undefined;
  const hint = "frame_ancestors takes origins such as https://app.example.com (scheme, host, optional port; no path), https://*.example.com, or 'self'";
  if (v === '*' || v === "'none'") return `"${v}" is not allowed: ${v === '*' ? 'it would let any site frame the connect page' : "'none' is the default: leave frame_ancestors out"}; ${hint}`;
  const m = /^(https?):\/\/(\*\.)?([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:\d{1,5})?\/?$/.exec(v);
  if (!m) return `"${v}" is not an origin: ${hint}`;
  const host = m[3]!;
  if (!host.startsWith('[') && (host.startsWith('.') || host.endsWith('.') || host.includes('..'))) return `"${v}" is not an origin: ${hint}`;
  if (m[4] && Number(m[4].slice(1)) > 65535) return `"${v}": port ${m[4].slice(1)} is out of range (0 to 65535)`;
  return undefined;
}

export const settingsSpec: ObjectSpec = obj({
  listen: listenSpec,
  public_url: url(),
  entity_header: str({ pattern: HEADER_NAME, hint: 'a valid header name' }),
  store: str({
    check: (v) =>
      /^(sqlite:.+|memory:?|rediss?:\/\/.+|postgres(ql)?:\/\/.+)$/.test(v)
        ? undefined
        : `"${v}" is not a store; expected sqlite:PATH, memory, redis://host:port, or postgres://user@host/db`,
  }),
  store_prefix: str({ pattern: /^[A-Za-z0-9_.:-]{1,64}$/, hint: 'a prefix of letters, digits and _.:-' }),
  admin_token: str({ minLength: 16, check: (v) => (v.length < 16 ? 'must be at least 16 characters' : undefined) }),
  clients: list(
    obj(
      {
        name: str({ minLength: 1 }),
        key: str({ minLength: 16 }),
        entities: list(str({ pattern: ENTITY_PATTERN, hint: 'an entity id or pattern with *' }), 1),
      },
      ['name', 'key'],
    ),
  ),
  allow_unauthenticated: bool(),
  passthrough: str({ enum: ['allow', 'deny'] }),
  egress: obj({
    allow_private: list(str({ check: (v) => (ipaddr.isValidCIDR(v) ? undefined : `"${v}" is not a CIDR such as 10.1.0.0/16`) })),
  }),
  tls: obj({ intercept: bool(), ca_dir: str({ minLength: 1 }), upstream_ca: str({ minLength: 1 }) }),
  connect: obj({ allowed_redirects: list(url()), frame_ancestors: list(str({ check: frameAncestorProblem })) }),
  ui: obj({ enabled: bool() }),
  limits: obj({
    replay_body_bytes: int(0, 1 << 30),
    replay_budget_bytes: int(0, 2 ** 40),
    body_idle_ms: int(1, 3_600_000),
    admin_body_bytes: int(1024, 1 << 30),
    upstream_connect_timeout_ms: int(1, 600000),
    upstream_response_timeout_ms: int(1, 3600000),
    requests_per_minute: int(1, 10_000_000),
    header_bytes: int(1024, 1 << 20),
    header_count: int(8, 10_000),
    request_header_timeout_ms: int(1, 600_000),
    keep_alive_timeout_ms: int(1, 3_600_000),
    upstream_keep_alive_timeout_ms: int(1, 3_600_000),
    max_connections: int(1, 1_000_000),
    max_tunnels: int(1, 1_000_000),
    max_tunnels_per_client: int(1, 1_000_000),
    new_leaves_per_second: int(1, 100_000),
    shutdown_grace_ms: int(0, 3_600_000),
  }),
  events: obj({ webhook_url: url(), secret: str({ minLength: 1 }) }, ['webhook_url']),
  log: obj({ level: str({ enum: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] }) }),
  // The series updated on every proxied request (src/metrics.ts); false leaves them out of /metrics.
  metrics: obj({ requests: bool() }),
  // One JSON line per request to an integration host (src/audit/); without `file`, an in-memory ring only; `enabled: false`, none at all.
  audit: obj({ enabled: bool(), file: str({ minLength: 1 }), max_bytes: int(1024, 1 << 40), keep: int(1, 100) }),
});
