import type { ServerResponse } from 'node:http';

/**
 * The one registry of errors credproxy answers itself (DESIGN.md, "Errors that credproxy
 * itself answers"). Every answer carries `X-Credproxy-Error: <code>` so that a client can
 * always tell credproxy's answers from the upstream's. test/readme.test.ts checks this table
 * against the one in docs/errors.md.
 */
export const ERRORS = {
  entity_required: { status: 400, message: 'this host belongs to an integration and no entity was named' },
  bad_request: { status: 400, message: 'malformed request' },
  unauthorized: { status: 401, message: 'a valid admin token is required' },
  not_found: { status: 404, message: 'not found' },
  method_not_allowed: { status: 405, message: 'method not allowed' },
  host_denied: { status: 403, message: 'policy forbids this host' },
  entity_denied: { status: 403, message: 'this client may not act for that entity' },
  proxy_auth_required: { status: 407, message: 'proxy authentication required' },
  request_timeout: { status: 408, message: 'the request body stopped arriving' },
  payload_too_large: { status: 413, message: 'request body too large' },
  connection_missing: { status: 424, message: 'no connection for this entity and integration' },
  connection_expired: { status: 424, message: 'the connection expired; the user must connect again' },
  rate_limited: { status: 429, message: 'request rate over the configured limit' },
  headers_too_large: { status: 431, message: 'request headers too large' },
  internal_error: { status: 500, message: 'credproxy failed to handle this request' },
  upstream_error: { status: 502, message: 'the upstream could not be reached or answered garbage' },
  refresh_failed: { status: 502, message: 'the token endpoint could not be reached or answered garbage' },
  store_unavailable: { status: 503, message: 'the store does not answer' },
  upstream_timeout: { status: 504, message: 'the upstream did not answer in time' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

/**
 * An error the pipeline knows how to answer. Throw it anywhere in a request's handling;
 * the server turns it into the documented status, JSON body and header.
 */
export class CredproxyError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;

  constructor(code: ErrorCode, message?: string, headers: Record<string, string> = {}) {
    super(message ?? ERRORS[code].message);
    this.name = 'CredproxyError';
    this.code = code;
    this.status = ERRORS[code].status;
    this.headers = headers;
  }
}

export function isCredproxyError(err: unknown): err is CredproxyError {
  return err instanceof CredproxyError;
}

/** Writes the JSON error answer, unless the response is already under way. */
export function sendError(res: ServerResponse, err: CredproxyError): void {
  if (res.headersSent) {
    res.destroy(err);
    return;
  }
  const body = JSON.stringify({ error: { code: err.code, message: err.message } });
  res.writeHead(err.status, {
    ...err.headers,
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'x-credproxy-error': err.code,
  });
  res.end(body);
}
