import ipaddr from 'ipaddr.js';
import { bool, int, list, obj, str, type ObjectSpec, type Spec } from './spec.js';

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

const inject: Spec = obj({
  headers: { kind: 'map', values: str(), keyPattern: HEADER_NAME, keyHint: 'a valid header name' },
  query: { kind: 'map', values: str(), keyPattern: /^[^\s&=#]+$/, keyHint: 'a valid query parameter name' },
});

const field: Spec = {
  kind: 'oneOf',
  hint: 'a field name or a mapping with name, pattern, description, secret',
  options: [
    str({ pattern: /^[A-Za-z_][A-Za-z0-9_]*$/, hint: 'a field name (letters, digits, _)' }),
    obj(
      {
        name: str({ pattern: /^[A-Za-z_][A-Za-z0-9_]*$/, hint: 'a field name (letters, digits, _)' }),
        pattern: regex(),
        description: str(),
        secret: bool(),
        optional: bool(),
      },
      ['name'],
    ),
  ],
};

const scopes: Spec = list(str({ minLength: 1 }));
const stringMap: Spec = { kind: 'map', values: str() };
const privateKey = () => str({ multiline: true });

const common = { type: str(), inject, fields: list(field) };

const oauthClient = {
  token_url: templatedUrl(),
  client_id: str(),
  client_secret: str(),
  scopes,
  scope_separator: str(),
  token_request_auth_method: str({ enum: ['client_secret_basic', 'client_secret_post'] }),
  token_params: stringMap,
  token_response: stringMap,
  refresh_before: int(0, 86400),
};

const jwtKeys = {
  algorithm: str({
    enum: ['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'],
  }),
  private_key: privateKey(),
  key_id: str(),
  ttl: int(1, 86400),
  clock_skew: int(0, 3600),
  claims: { kind: 'map', values: { kind: 'oneOf', hint: 'a string, number or list', options: [str(), list(str())] } } as Spec,
};

const variants: Record<string, ObjectSpec> = {
  oauth2: obj(
    {
      ...common,
      ...oauthClient,
      authorize_url: templatedUrl(),
      pkce: bool(),
      authorization_params: stringMap,
      issuer: str(),
      allowed_scopes: scopes,
      required_scopes: scopes,
    },
    ['authorize_url', 'token_url', 'client_id'],
  ),
  oauth2_client_credentials: obj({ ...common, ...oauthClient }, ['token_url']),
  api_key: obj({ ...common, jwt_verify: stringMap }),
  bearer: obj({ ...common, jwt_verify: stringMap }),
  basic: obj({ ...common }),
  jwt: obj({ ...common, ...jwtKeys }, ['algorithm']),
  jwt_bearer: obj(
    {
      ...common,
      ...jwtKeys,
      token_url: templatedUrl(),
      scopes,
      token_response: stringMap,
      token_request: obj({
        assertion: str({ enum: ['form', 'bearer'] }),
        method: str({ enum: ['POST', 'GET', 'PUT'] }),
        headers: { kind: 'map', values: str(), keyPattern: HEADER_NAME, keyHint: 'a valid header name' },
        params: stringMap,
      }),
      refresh_before: int(0, 86400),
    },
    ['algorithm', 'token_url'],
  ),
  oauth1: obj(
    {
      ...common,
      consumer_key: str(),
      consumer_secret: privateKey(),
      signature_method: str({ enum: ['HMAC-SHA1', 'HMAC-SHA256', 'RSA-SHA1', 'PLAINTEXT'] }),
      realm: str(),
    },
    ['consumer_key'],
  ),
  aws_sigv4: obj({ ...common, region: str(), service: str() }, ['region', 'service']),
};

const auth: Spec = { kind: 'tagged', tag: 'type', variants };

export const integrationSpec: ObjectSpec = obj(
  {
    name: str({ pattern: /^[a-z0-9_-]+$/, hint: 'a name of lower-case letters, digits, _ and -' }),
    description: str(),
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
    auth: { kind: 'oneOf', hint: 'an auth mapping or a list of them', options: [auth, list(auth, 1)] },
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

const listenSpec = str({
  check: (v) => {
    const m = /^(\[[0-9a-fA-F:]+\]|[^:[\]]+):(\d{1,5})$/.exec(v);
    if (!m) return `"${v}" is not host:port`;
    // Checked here, at the value's line, so it is reported with every other problem.
    return Number(m[2]) > 65535 ? `port ${m[2]} is out of range (0 to 65535)` : undefined;
  },
});

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
  connect: obj({ allowed_redirects: list(url()) }),
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
  // One JSON line per request to an integration host (src/audit/); without `file`, an in-memory ring only.
  audit: obj({ file: str({ minLength: 1 }), max_bytes: int(1024, 1 << 40), keep: int(1, 100) }),
});
