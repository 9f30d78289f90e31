import { ERRORS } from '../errors.js';
import { ENTITY_ID } from '../proxy/identify.js';
import { LABEL } from '../store/label.js';
import { DEFAULT_TTL_S, MAX_TTL_S } from '../tokens/entity-tokens.js';
import { anyValue, array, boolean, integer, nullable, number, object, optional, record, string, type Infer } from './schema.js';

/**
 * The documented shapes of the admin API. Request bodies are checked with these (the handlers
 * add what depends on the config); answers are described by them, and test/api/openapi.test.ts
 * checks real answers against them, so a field added to a view without its shape here fails.
 */
const time = (description?: string) => string({ format: 'date-time', ...(description ? { description } : {}) });
const entity = string({ pattern: ENTITY_ID.source, description: 'an entity id: 1 to 256 letters, digits and ._:@+- starting with a letter or digit' });
const label = string({ pattern: LABEL.source, description: 'a connection label: 1 to 64 characters, like an entity id' });
/** A connection param's value; its pattern (from the YAML) is checked by the handler. */
const paramValue = string({ minLength: 1, message: 'must be a non-empty string without control characters' });
const strings = (description?: string) => array(string(), description ? { description } : {});

// --- request bodies ---------------------------------------------------------------------------

export const PutConnectionBody = object(
  {
    scheme: optional(string({ description: 'the auth scheme type to store (default: the integration\'s first)' })),
    params: optional(record(paramValue, { description: 'the integration\'s declared params (each checked against its pattern)' })),
    credentials: record(anyValue(), { description: 'the scheme\'s fields, or a token set for oauth2' }),
  },
  { description: 'credentials to store for an entity' },
);

export const ConnectLinkBody = object({
  redirect_to: optional(nullable(string({ format: 'uri', description: 'where the finished flow sends the user; must be on connect.allowed_redirects' }))),
  params: optional(record(paramValue, { description: 'the integration\'s declared params, fixed for this link; left out, the connect page asks the user for them' })),
  scopes: optional(array(string(), { minItems: 1, message: 'must be a non-empty list of scope names (no spaces or control characters)', description: 'scopes to ask for instead of the integration\'s default (within allowed_scopes); oauth2 only' })),
  scheme: optional(string({ description: 'the one scheme the page offers (default: every scheme a user can connect: oauth2 by the provider, the others by a form for their fields)' })),
  label: optional(label),
});

export const EntityTokenBody = object({
  integrations: optional(array(string(), { minItems: 1, message: 'must be a non-empty list of integration names', description: 'the integrations the token may be used for (default: all)' })),
  ttl: optional(integer({ minimum: 1, maximum: MAX_TTL_S, message: `must be a whole number of seconds from 1 to ${MAX_TTL_S} (default ${DEFAULT_TTL_S})`, description: `seconds (default ${DEFAULT_TTL_S})` })),
  label: optional(string({ description: 'the connection label requests made with the token use' })),
});

// --- answers ------------------------------------------------------------------------------------

const field = object({ name: string(), secret: boolean(), optional: boolean(), pattern: nullable(string()), description: nullable(string()) });
const scheme = object({
  type: string(),
  default: boolean(),
  needs_connection: boolean(),
  connect: string({
    enum: ['connect_link', 'put', 'none'],
    description: "how a connection is made: connect_link, only through the user at the provider (oauth2); put, a program stores the scheme's fields with PUT (a connect link may also work: see connect_link); none, the scheme needs no stored connection",
  }),
  connect_link: boolean({ description: "a connect link can make this connection: the provider's sign-in (oauth2) or the connect page's form for the scheme's fields" }),
  scopes: optional(strings()),
  allowed_scopes: optional(strings()),
  required_scopes: optional(strings()),
  jwt_verify: optional(
    object({
      key: string({ enum: ['jwks_url', 'public_key'] }),
      jwks_url: nullable(string()),
      issuer: nullable(string()),
      audience: nullable(strings()),
      algorithms: nullable(strings()),
    }),
  ),
  fields: array(field),
});

export const Integration = object({
  name: string(),
  description: nullable(string()),
  hosts: strings(),
  paths: strings(),
  upstream: string({ enum: ['https', 'http'] }),
  verify: optional(object({ method: string(), path: string(), host: string(), expect: nullable(array(integer())) })),
  params: array(object({ name: string(), pattern: nullable(string()), default: nullable(string()), description: nullable(string()) })),
  schemes: array(scheme),
});

export const IntegrationList = object({ integrations: array(Integration) });

export const Verification = object({ ok: boolean(), status: nullable(integer()), message: string() });

const connectionShape = {
  entity,
  integration: string(),
  label: nullable(label),
  scheme: string(),
  params: record(string()),
  status: string({ enum: ['initiated', 'active', 'expired', 'failed'] }),
  reason: nullable(string()),
  fields: array(string(), { description: 'the names of the stored credential fields; never their values' }),
  expires_at: nullable(time()),
  refreshed_at: nullable(time('when credproxy last refreshed the OAuth token; null when it has not since the connection was stored')),
  scopes: nullable(strings()),
  created_at: time(),
  updated_at: time(),
};

export const Connection = object(connectionShape);
/** A PUT's answer: the connection, and what the upstream said when the integration has `verify`. */
export const StoredConnection = object({ ...connectionShape, verification: optional(Verification) });
export const ConnectionList = object({ entity, connections: array(Connection) });
export const ConnectLink = object({ connect_url: string({ format: 'uri' }), expires_at: time() });

export const EntityToken = object({
  id: string(),
  token: string({ description: 'cpx_…: give it to the client in place of an API key or as the proxy password' }),
  entity,
  integrations: nullable(strings()),
  label: nullable(string()),
  expires_at: time(),
});

export const AuditEntry = object({
  time: time(),
  entity: nullable(string()),
  integration: string(),
  label: nullable(string()),
  method: string(),
  host: string(),
  path: string(),
  status: integer(),
  bytes_in: integer(),
  bytes_out: integer(),
  ms: number({ description: 'milliseconds, to a tenth' }),
  refreshed: boolean(),
  replayed: boolean(),
  client: nullable(string()),
});
export const AuditPage = object({ entries: array(AuditEntry) });

export const Health = object({ status: string({ enum: ['ok'] }), worker: optional(integer()) });
export const Ready = object({ status: string({ enum: ['ready'] }), integrations: integer() });

const codes = Object.keys(ERRORS) as Array<keyof typeof ERRORS>;
export const ErrorBody = object({
  error: object({ code: string({ enum: codes }), message: string() }),
  verification: optional(Verification),
});

export type IntegrationView = Infer<typeof Integration>;
export type ConnectionView = Infer<typeof Connection>;
export type StoredConnectionView = Infer<typeof StoredConnection>;
export type ConnectLinkView = Infer<typeof ConnectLink>;
export type EntityTokenView = Infer<typeof EntityToken>;
export type AuditEntryView = Infer<typeof AuditEntry>;
export type PutConnectionRequest = Infer<typeof PutConnectionBody>;
export type ConnectLinkRequest = Infer<typeof ConnectLinkBody>;
export type EntityTokenRequest = Infer<typeof EntityTokenBody>;
export type ErrorBodyView = Infer<typeof ErrorBody>;
