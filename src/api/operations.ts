import type { ErrorCode } from '../errors.js';
import type { Type } from './schema.js';
import * as S from './shapes.js';

/**
 * What each route of the API answers, as the OpenAPI document (api/openapi.ts) and the typed
 * client (src/client/) see it. router.ts gives every route one of these; the request bodies
 * here are the ones the handlers check with, and test/api/openapi.test.ts walks the routes to
 * keep the three in step.
 */
export interface Operation {
  operationId: string;
  method: 'GET' | 'PUT' | 'POST' | 'DELETE';
  /** the path template, `{name}` for a path parameter */
  path: string;
  summary: string;
  tag: 'health' | 'integrations' | 'connections' | 'tokens' | 'audit' | 'connect' | 'meta';
  /** needs `Authorization: Bearer <admin token>` */
  admin: boolean;
  query?: Array<{ name: string; description: string; schema: Record<string, unknown> }>;
  body?: { type: Type<unknown>; contentType?: string };
  /** the successful answers: status → what comes back (no schema: no body) */
  ok: Array<{ status: number; description: string; type?: Type<unknown>; contentType?: string }>;
  /** every error code this operation can answer; the status of each is in errors.ts */
  errors: ErrorCode[];
}

export const PATH_PARAMS: Record<string, string> = {
  name: 'an integration name',
  integration: 'an integration name',
  entity: 'an entity id (1 to 256 letters, digits and ._:@+- starting with a letter or digit)',
  id: 'an entity token id',
  hash: "the first 16 hex digits of the logo's SHA-256, as the connect page links it",
};

const labelQuery = { name: 'label', description: 'a labelled connection (1 to 64 characters, like an entity id); without it, the default connection', schema: { type: 'string' } };
const ADMIN: ErrorCode[] = ['unauthorized', 'internal_error'];
const BODY: ErrorCode[] = ['bad_request', 'payload_too_large', 'request_timeout'];
const html = { contentType: 'text/html' };

const op = (o: Operation) => o;

export const OPERATIONS = {
  health: op({ operationId: 'health', method: 'GET', path: '/healthz', summary: 'the process is up', tag: 'health', admin: false, ok: [{ status: 200, description: 'up', type: S.Health }], errors: ['internal_error'] }),
  ready: op({
    operationId: 'ready', method: 'GET', path: '/readyz', summary: 'the config is loaded and the store answers', tag: 'health', admin: false,
    ok: [{ status: 200, description: 'ready', type: S.Ready }], errors: ['store_unavailable', 'internal_error'],
  }),
  metrics: op({ operationId: 'metrics', method: 'GET', path: '/metrics', summary: 'Prometheus metrics', tag: 'health', admin: false, ok: [{ status: 200, description: 'Prometheus text format', contentType: 'text/plain' }], errors: ['internal_error'] }),
  getOpenApi: op({ operationId: 'getOpenApi', method: 'GET', path: '/api/openapi.json', summary: 'this document', tag: 'meta', admin: true, ok: [{ status: 200, description: 'the OpenAPI 3.1 document', contentType: 'application/json' }], errors: ADMIN }),
  listIntegrations: op({
    operationId: 'listIntegrations', method: 'GET', path: '/api/integrations', summary: 'every integration: hosts, params, and per scheme the fields a connection supplies', tag: 'integrations', admin: true,
    ok: [{ status: 200, description: 'the integrations', type: S.IntegrationList }], errors: ADMIN,
  }),
  getIntegration: op({
    operationId: 'getIntegration', method: 'GET', path: '/api/integrations/{name}', summary: 'one integration', tag: 'integrations', admin: true,
    ok: [{ status: 200, description: 'the integration', type: S.Integration }], errors: [...ADMIN, 'not_found'],
  }),
  listConnections: op({
    operationId: 'listConnections', method: 'GET', path: '/api/entities/{entity}/connections', summary: "an entity's connections (secrets never shown)", tag: 'connections', admin: true,
    ok: [{ status: 200, description: 'the connections', type: S.ConnectionList }], errors: [...ADMIN, 'bad_request', 'store_unavailable'],
  }),
  getConnection: op({
    operationId: 'getConnection', method: 'GET', path: '/api/entities/{entity}/connections/{integration}', summary: 'one connection', tag: 'connections', admin: true, query: [labelQuery],
    ok: [{ status: 200, description: 'the connection', type: S.Connection }], errors: [...ADMIN, 'bad_request', 'not_found', 'store_unavailable'],
  }),
  putConnection: op({
    operationId: 'putConnection', method: 'PUT', path: '/api/entities/{entity}/connections/{integration}', summary: 'store credentials (checked against the upstream first when the integration has `verify`)', tag: 'connections', admin: true, query: [labelQuery],
    body: { type: S.PutConnectionBody },
    ok: [{ status: 200, description: 'the stored connection', type: S.StoredConnection }],
    // upstream_error: a jwt_verify key set that cannot be fetched
    errors: [...ADMIN, ...BODY, 'not_found', 'store_unavailable', 'upstream_error'],
  }),
  deleteConnection: op({
    operationId: 'deleteConnection', method: 'DELETE', path: '/api/entities/{entity}/connections/{integration}', summary: 'delete a connection (204 whether or not it existed)', tag: 'connections', admin: true, query: [labelQuery],
    ok: [{ status: 204, description: 'deleted' }], errors: [...ADMIN, 'bad_request', 'store_unavailable'],
  }),
  createConnectLink: op({
    operationId: 'createConnectLink', method: 'POST', path: '/api/entities/{entity}/connections/{integration}/connect', summary: "a single-use link (10 minutes) to a page where the user connects this entity with any of the integration's schemes (OAuth at the provider, or a form for the scheme's fields)", tag: 'connections', admin: true, query: [labelQuery],
    body: { type: S.ConnectLinkBody },
    ok: [{ status: 200, description: 'the link; the connection becomes initiated unless it is active', type: S.ConnectLink }], errors: [...ADMIN, ...BODY, 'not_found', 'store_unavailable'],
  }),
  createEntityToken: op({
    operationId: 'createEntityToken', method: 'POST', path: '/api/entities/{entity}/tokens', summary: 'an entity token (cpx_…) a client can use in place of an API key or as the proxy password', tag: 'tokens', admin: true,
    body: { type: S.EntityTokenBody }, ok: [{ status: 200, description: 'the token (shown once)', type: S.EntityToken }], errors: [...ADMIN, ...BODY, 'store_unavailable'],
  }),
  revokeEntityToken: op({
    operationId: 'revokeEntityToken', method: 'DELETE', path: '/api/tokens/{id}', summary: 'revoke an entity token', tag: 'tokens', admin: true,
    ok: [{ status: 204, description: 'revoked' }], errors: [...ADMIN, 'not_found', 'store_unavailable'],
  }),
  queryAudit: op({
    operationId: 'queryAudit', method: 'GET', path: '/api/audit', summary: 'the latest matching audit entries, oldest first', tag: 'audit', admin: true,
    query: [
      { name: 'entity', description: 'only this entity', schema: { type: 'string' } },
      { name: 'integration', description: 'only this integration', schema: { type: 'string' } },
      { name: 'since', description: 'an ISO 8601 time or milliseconds since the epoch', schema: { type: 'string' } },
      { name: 'limit', description: 'at most this many (default 100)', schema: { type: 'integer', minimum: 1, maximum: 1000 } },
    ],
    // not_found: the audit log is turned off (audit.enabled: false).
    ok: [{ status: 200, description: 'the entries', type: S.AuditPage }], errors: [...ADMIN, 'bad_request', 'not_found'],
  }),
  connectCallback: op({
    operationId: 'connectCallback', method: 'GET', path: '/connect/callback', summary: "the OAuth provider's redirect back (browser-facing: errors are a page for browsers, JSON for programs)", tag: 'connect', admin: false,
    query: [
      { name: 'code', description: 'the authorization code', schema: { type: 'string' } },
      { name: 'state', description: 'the single-use state', schema: { type: 'string' } },
      { name: 'error', description: "the provider's error, when the user denied or it failed", schema: { type: 'string' } },
    ],
    ok: [{ status: 200, description: 'a success page', ...html }, { status: 302, description: 'to the redirect_to of the link' }], errors: ['bad_request', 'store_unavailable', 'internal_error'],
  }),
  connectPage: op({
    operationId: 'connectPage', method: 'GET', path: '/connect/{integration}', summary: 'the connect page a connect link opens (binds the flow to this browser with a cookie)', tag: 'connect', admin: false,
    query: [{ name: 'token', description: 'the connect link token', schema: { type: 'string' } }],
    ok: [{ status: 200, description: 'the connect page', ...html }], errors: ['bad_request', 'not_found', 'store_unavailable', 'internal_error'],
  }),
  connectLogo: op({
    operationId: 'connectLogo', method: 'GET', path: '/connect/{integration}/logo/{hash}', summary: "an integration's display.logo_file, for the connect page (PNG, SVG, JPEG or WebP; cached as immutable: a changed file is a new hash, an old one 404)", tag: 'connect', admin: false,
    ok: [{ status: 200, description: 'the image', contentType: 'image/*' }], errors: ['not_found', 'internal_error'],
  }),
  connectContinue: op({
    operationId: 'connectContinue', method: 'POST', path: '/connect/{integration}', summary: "the connect page's forms (with the page's cookie): oauth2 uses the link up and moves the browser on to the provider; a scheme with fields shows them, or stores them once checked (and verified) and then uses the link up; a refused form comes back with the error (400)", tag: 'connect', admin: false,
    body: {
      type: {
        schema: {
          type: 'object',
          properties: {
            token: { type: 'string' },
            csrf: { type: 'string' },
            step: { type: 'string', enum: ['choose', 'submit'] },
            scheme: { type: 'string' },
          },
          required: ['token', 'csrf'],
          // p.{param} and f.{field}: the params and the chosen scheme's fields, each at most 8192 characters.
          additionalProperties: { type: 'string', maxLength: 8192 },
        },
        check: (v) => v,
      },
      contentType: 'application/x-www-form-urlencoded',
    },
    ok: [{ status: 200, description: "a page: on to the provider's authorize URL, the fields form, or connected (on to redirect_to)", ...html }], errors: [...BODY, 'not_found', 'store_unavailable', 'internal_error'],
  }),
} satisfies Record<string, Operation>;

export type OperationId = keyof typeof OPERATIONS;
