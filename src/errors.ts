import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

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

  /** `options.cause`: what went wrong underneath (kept for the log, never sent to the client) */
  constructor(code: ErrorCode, message?: string, headers: Record<string, string> = {}, options?: ErrorOptions) {
    super(message ?? ERRORS[code].message, options);
    this.name = 'CredproxyError';
    this.code = code;
    this.status = ERRORS[code].status;
    this.headers = headers;
  }
}

export function isCredproxyError(err: unknown): err is CredproxyError {
  return err instanceof CredproxyError;
}

/** The header that marks credproxy's own answers (DESIGN.md, contract). */
export const ERROR_HEADER = 'x-credproxy-error';

/** What every error answer is made of; the one place its body and headers are decided. */
export interface ErrorAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * The documented answer to `err`: `{"error": {"code", "message"}}` (plus `extra` fields beside
 * `error`, for an answer that says more) and X-Credproxy-Error, with the error's own headers
 * (Retry-After, Proxy-Authenticate, …) first.
 */
export function errorAnswer(err: CredproxyError, extra: Readonly<Record<string, unknown>> = {}): ErrorAnswer {
  const body = JSON.stringify({ error: { code: err.code, message: err.message }, ...extra });
  return {
    status: err.status,
    headers: {
      ...err.headers,
      'content-type': 'application/json; charset=utf-8',
      [ERROR_HEADER]: err.code,
      'content-length': String(Buffer.byteLength(body)),
    },
    body,
  };
}

/** Writes the error answer on a response (the proxy path, the admin API), unless it is already under way. */
export function sendError(res: ServerResponse, err: CredproxyError, extra?: Readonly<Record<string, unknown>>): void {
  if (res.headersSent) {
    res.destroy(err);
    return;
  }
  const { status, headers, body } = errorAnswer(err, extra);
  res.writeHead(status, headers);
  res.end(body);
}

/**
 * The same answer written straight to a socket: for CONNECT and upgrade requests, and requests
 * node could not even parse, which have no ServerResponse. The connection is closed after it.
 */
export function sendRawError(socket: Duplex, err: CredproxyError): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const { status, headers, body } = errorAnswer(err);
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n`;
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
  socket.end(`${head}connection: close\r\n\r\n${body}`);
}
