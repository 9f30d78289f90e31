import type { SchemeCatalog } from './scheme-definition.js';
import { integrationSpecFor, settingsSpec } from './schema.js';
import type { ObjectSpec, Spec } from './spec.js';

/**
 * JSON Schema (draft-07) for editors, generated from the same Spec that validates configs at
 * run time (schema.ts), so the two cannot disagree. What the Spec checks in code (URLs,
 * host:port, regular expressions, host names) is left to `credproxy validate`; the schema
 * covers keys, types, enums, patterns, ranges and which keys are required.
 */
export type JsonSchema = Record<string, unknown>;

/** `${NAME}` is replaced from the environment when the config loads, so it may stand for any string. */
const ENV_REFERENCE: JsonSchema = { type: 'string', pattern: '\\$\\{[A-Za-z_][A-Za-z0-9_]*\\}' };

/** Hover text for editors, keyed by the dotted path of a key. */
const DESCRIPTIONS: Record<string, string> = {
  listen: 'host:port that serves proxy traffic and the API (restart to change)',
  public_url: 'base of OAuth redirect URIs and connect links',
  entity_header: 'the header naming the entity a request acts for',
  store: 'sqlite:PATH (embedded, default), postgres://user@host:5432/db, redis://host:6379, or memory (restart to change)',
  store_prefix: 'namespace of every key in the store',
  admin_token: 'bearer token of the admin API; use ${CREDPROXY_ADMIN_TOKEN}',
  clients: 'when present, every proxied request needs Proxy-Authorization with one of these keys',
  allow_unauthenticated: 'without clients, only a loopback listen address is allowed unless this is true',
  passthrough: 'hosts that no integration owns: allow (forwarded with no credential) or deny',
  egress: 'which private addresses passthrough may reach',
  tls: 'CONNECT interception with a local CA, and extra upstream CAs',
  connect: 'OAuth connect flow settings',
  limits: 'body sizes and timeouts',
  events: 'connection events POSTed to a webhook, signed with the secret',
  log: 'log settings',
  name: 'integration name; defaults to the file name',
  hosts: 'exact host names, host:port, "*.example.com", or templates like "{{subdomain}}.example.com"',
  upstream: 'https (default: plain-http requests are upgraded) or http',
  paths: 'path prefixes this integration owns on its hosts',
  params: 'non-secret connection parameters (host templates, …)',
  auth: 'the auth scheme, or a list of them (a connection picks one; default the first)',
  refresh_on: 'upstream statuses that trigger refresh-and-replay',
  inject: 'headers and query parameters to inject; {{name}} templates',
};

function stringSchema(spec: Extract<Spec, { kind: 'string' }>): JsonSchema {
  const base: JsonSchema = { type: 'string' };
  if (spec.minLength !== undefined) base.minLength = spec.minLength;
  const constraint: JsonSchema = {};
  if (spec.enum) constraint.enum = [...spec.enum];
  if (spec.pattern) constraint.pattern = spec.pattern.source;
  if (Object.keys(constraint).length === 0) return base;
  return { ...base, anyOf: [constraint, ENV_REFERENCE] };
}

function objectSchema(spec: ObjectSpec, path: string): JsonSchema {
  const properties: Record<string, JsonSchema> = {};
  for (const [key, sub] of Object.entries(spec.props)) properties[key] = toJsonSchema(sub, path ? `${path}.${key}` : key);
  const out: JsonSchema = { type: 'object', properties, additionalProperties: false };
  if (spec.required && spec.required.length > 0) out.required = [...spec.required];
  return out;
}

/** The JSON Schema of one Spec node; `path` only picks descriptions. */
export function toJsonSchema(spec: Spec, path = ''): JsonSchema {
  let out: JsonSchema;
  switch (spec.kind) {
    case 'string':
      out = stringSchema(spec);
      break;
    case 'int':
      out = { type: 'integer' };
      if (spec.min !== undefined) out.minimum = spec.min;
      if (spec.max !== undefined) out.maximum = spec.max;
      break;
    case 'bool':
      out = { type: 'boolean' };
      break;
    case 'array':
      out = { type: 'array', items: toJsonSchema(spec.items, `${path}[]`) };
      if (spec.minItems !== undefined) out.minItems = spec.minItems;
      break;
    case 'object':
      out = objectSchema(spec, path);
      break;
    case 'map':
      out = { type: 'object', additionalProperties: toJsonSchema(spec.values, `${path}.*`) };
      if (spec.keyPattern) out.propertyNames = { pattern: spec.keyPattern.source };
      break;
    case 'oneOf':
      out = { anyOf: spec.options.map((o) => toJsonSchema(o, path)) };
      break;
    case 'tagged': {
      const names = Object.keys(spec.variants);
      out = {
        type: 'object',
        required: [spec.tag],
        properties: { [spec.tag]: { enum: names } },
        // One if/then per variant: editors complete the keys of the type being written.
        allOf: names.map((n) => ({
          if: { properties: { [spec.tag]: { const: n } }, required: [spec.tag] },
          then: objectSchema(spec.variants[n]!, path),
        })),
      };
      break;
    }
  }
  const description = spec.description ?? DESCRIPTIONS[path];
  return description ? { description, ...out } : out;
}

const SCHEMA_BASE = 'http://json-schema.org/draft-07/schema#';

export function settingsJsonSchema(): JsonSchema {
  return { $schema: SCHEMA_BASE, title: 'credproxy.yaml', ...toJsonSchema(settingsSpec) };
}

/** The integration file's schema, with one `auth` variant per scheme in `catalog`. */
export function integrationJsonSchema(catalog: SchemeCatalog): JsonSchema {
  return { $schema: SCHEMA_BASE, title: 'credproxy integration (config/integrations/*.yaml)', ...toJsonSchema(integrationSpecFor(catalog)) };
}

/** The files shipped in schema/: name → pretty JSON text. */
export function schemaFiles(catalog: SchemeCatalog): Record<string, string> {
  return {
    'credproxy.schema.json': `${JSON.stringify(settingsJsonSchema(), null, 2)}\n`,
    'integration.schema.json': `${JSON.stringify(integrationJsonSchema(catalog), null, 2)}\n`,
  };
}
