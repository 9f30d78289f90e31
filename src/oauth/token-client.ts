import * as oauth from 'oauth4webapi';
import { fetch as undiciFetch, type Dispatcher } from 'undici';
import { CONTROL } from '../auth/fields.js';

/**
 * The token endpoint client. oauth4webapi builds and sends the requests (grant parameters,
 * client authentication with RFC 6749 §2.3.1 encoding, `Accept: application/json`); its
 * response processing is deliberately strict, so the answer is read here with the tolerance
 * real providers need: form-encoded bodies (GitHub without the Accept header), nested token
 * fields (Slack's `authed_user.access_token`), no `token_type` or `expires_in`, and errors
 * sent with status 200 (GitHub).
 */

/** The client settings of an oauth2 / oauth2_client_credentials `auth` entry (YAML names). */
export interface OAuthClientConfig {
  token_url: string;
  client_id?: string;
  client_secret?: string;
  token_request_auth_method?: 'client_secret_basic' | 'client_secret_post';
  token_params?: Record<string, string>;
  token_response?: Record<string, string>;
  scopes?: string[];
  scope_separator?: string;
  issuer?: string;
}

export interface TokenSet {
  access_token: string;
  refresh_token?: string;
  /** seconds; undefined when the provider does not say */
  expires_in?: number;
  scope?: string;
  token_type?: string;
}

/**
 * `rejected`: the provider refused the grant or the client for good (invalid_grant,
 * invalid_client): retrying cannot help. `transient`: down, 5xx, timeout, garbage.
 */
export class TokenEndpointError extends Error {
  constructor(
    readonly kind: 'rejected' | 'transient',
    readonly oauthError: string | undefined,
    message: string,
  ) {
    super(message);
    this.name = 'TokenEndpointError';
  }
}

export interface TokenClientOptions {
  dispatcher?: Dispatcher;
  timeoutMs: number;
}

export type Grant =
  | { type: 'authorization_code'; callback: URLSearchParams; redirectUri: string; verifier: string | undefined }
  | { type: 'refresh_token'; refreshToken: string }
  | { type: 'client_credentials' };

/** Provider error codes that mean the grant or client is gone for good; GitHub's own names map onto RFC 6749's. */
const REJECTED: Record<string, string> = {
  invalid_grant: 'invalid_grant',
  invalid_client: 'invalid_client',
  unauthorized_client: 'invalid_client',
  bad_refresh_token: 'invalid_grant',
  bad_verification_code: 'invalid_grant',
  incorrect_client_credentials: 'invalid_client',
};

type Field = 'access_token' | 'refresh_token' | 'expires_in' | 'scope' | 'token_type';

export function authorizationServer(c: OAuthClientConfig, authorizeUrl?: string): oauth.AuthorizationServer {
  return {
    // oauth4webapi needs an issuer; without a declared one, the token URL's origin stands in
    // (it is only compared with an `iss` the callback carries, which the callback drops then).
    issuer: c.issuer ?? new URL(c.token_url).origin,
    token_endpoint: c.token_url,
    ...(authorizeUrl ? { authorization_endpoint: authorizeUrl } : {}),
  };
}

function clientAuth(c: OAuthClientConfig, secret: string | undefined): oauth.ClientAuth {
  if (secret === undefined) return oauth.None();
  return c.token_request_auth_method === 'client_secret_post' ? oauth.ClientSecretPost(secret) : oauth.ClientSecretBasic(secret);
}

export async function requestToken(
  c: OAuthClientConfig,
  client: { id: string; secret: string | undefined },
  grant: Grant,
  opts: TokenClientOptions,
): Promise<TokenSet> {
  const as = authorizationServer(c);
  const cl: oauth.Client = { client_id: client.id };
  const auth = clientAuth(c, client.secret);
  const fetchImpl = (url: string, init: RequestInit) =>
    undiciFetch(url, { ...(init as Record<string, unknown>), ...(opts.dispatcher ? { dispatcher: opts.dispatcher } : {}) } as never) as unknown as Promise<Response>;
  const options = {
    additionalParameters: { ...c.token_params },
    signal: AbortSignal.timeout(opts.timeoutMs),
    [oauth.customFetch]: fetchImpl,
    // Loopback and internal token endpoints may be plain http; the operator chose the URL.
    [oauth.allowInsecureRequests]: c.token_url.startsWith('http:'),
  };
  let response: Response;
  try {
    if (grant.type === 'authorization_code') {
      response = await oauth.authorizationCodeGrantRequest(as, cl, auth, grant.callback, grant.redirectUri, grant.verifier ?? oauth.nopkce, options);
    } else if (grant.type === 'refresh_token') {
      response = await oauth.refreshTokenGrantRequest(as, cl, auth, grant.refreshToken, options);
    } else {
      const params: Record<string, string> = {};
      if (c.scopes?.length) params.scope = c.scopes.join(c.scope_separator ?? ' ');
      response = await oauth.clientCredentialsGrantRequest(as, cl, auth, { ...c.token_params, ...params }, options);
    }
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
    const why = e.name === 'TimeoutError' ? 'timed out' : (e.cause?.code ?? e.code ?? e.message);
    throw new TokenEndpointError('transient', undefined, `the token endpoint could not be reached (${why})`);
  }
  return parseTokenResponse(response.status, response.headers.get('content-type') ?? '', await readText(response), c.token_response);
}

async function readText(response: Response): Promise<string> {
  try {
    return await response.text();
  } catch {
    throw new TokenEndpointError('transient', undefined, 'the token endpoint broke off its answer');
  }
}

/** Reads a token endpoint answer, JSON or form-encoded, into a TokenSet; pure, so every quirk is tested directly. */
export function parseTokenResponse(status: number, contentType: string, text: string, mapping: Record<string, string> = {}): TokenSet {
  const body = parseBody(contentType, text);
  const error = body && typeof body.error === 'string' ? body.error : undefined;
  if (error) {
    const mapped = REJECTED[error];
    const kind = mapped && status < 500 ? 'rejected' : 'transient';
    // The provider's error code is safe to show; its description may echo input, so it is not passed on.
    throw new TokenEndpointError(kind, mapped ?? error, `the token endpoint answered ${status} ${error}`);
  }
  if (status < 200 || status > 299) throw new TokenEndpointError('transient', undefined, `the token endpoint answered ${status}`);
  if (!body) throw new TokenEndpointError('transient', undefined, 'the token endpoint answered something that is neither JSON nor form-encoded');
  const get = (name: Field) => {
    const value = pick(body, mapping[name] ?? name);
    if (typeof value !== 'string' && typeof value !== 'number') return undefined;
    // A token with CR/LF in it would split the header it is injected into.
    if (CONTROL.test(String(value))) throw new TokenEndpointError('transient', undefined, `the token endpoint answered a ${name} with control characters`);
    return String(value);
  };
  const access_token = get('access_token');
  if (!access_token) throw new TokenEndpointError('transient', undefined, 'the token endpoint answered without an access_token');
  const set: TokenSet = { access_token };
  const refresh = get('refresh_token');
  if (refresh) set.refresh_token = refresh;
  const expires = Number(get('expires_in'));
  if (get('expires_in') !== undefined && Number.isFinite(expires) && expires > 0) set.expires_in = expires;
  const scope = get('scope');
  if (scope !== undefined) set.scope = scope;
  const type = get('token_type');
  if (type !== undefined) set.token_type = type;
  return set;
}

function parseBody(contentType: string, text: string): Record<string, unknown> | undefined {
  const trimmed = text.trim();
  if (/json/i.test(contentType) || trimmed.startsWith('{')) {
    try {
      const v: unknown = JSON.parse(trimmed);
      return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
    } catch {
      return undefined;
    }
  }
  if (/^[^\s=&]+=[^\s]*$/.test(trimmed)) return Object.fromEntries(new URLSearchParams(trimmed));
  return undefined;
}

/** `authed_user.access_token` → body.authed_user.access_token */
function pick(body: Record<string, unknown>, path: string): unknown {
  let cur: unknown = body;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}
