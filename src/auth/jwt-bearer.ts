import type { AuthConfig } from '../config/types.js';
import { CredproxyError } from '../errors.js';
import { JwtSigner, cacheKey } from './jwt-signer.js';
import { MissingValueError, compileTemplate, type Template } from './template.js';
import { TokenCache } from './token-cache.js';
import { exchangeToken, type TokenResponseMap } from './token-exchange.js';
import type { AcceptedCredentials, AuthScheme, CredentialRequest, FieldInfo, SchemeCheckContext, SchemeProblem } from './types.js';

/** How the signed assertion reaches the token endpoint. */
interface TokenRequestConfig {
  /** form: RFC 7523 (`grant_type` + `assertion` in a form body); bearer: `Authorization: Bearer <jwt>` (GitHub Apps) */
  assertion?: 'form' | 'bearer';
  method?: 'POST' | 'GET' | 'PUT';
  headers?: Record<string, string>;
  /** extra form parameters (form style) */
  params?: Record<string, string>;
}

const GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
/** Without an expiry in the answer, a token is reused this long (then minted anew, or sooner on a 401). */
const DEFAULT_LIFETIME_MS = 300_000;

/**
 * `jwt_bearer`: exchanges a signed assertion for an access token, declared entirely in YAML.
 * The RFC 7523 grant (Google service accounts and the like) is the default; `token_request`
 * and `token_response` describe other exchanges of the same shape, such as GitHub App
 * installation tokens. Tokens are cached per entity with single-flight and minted anew
 * `refresh_before` seconds before they expire, or after `forget` (a 401 upstream).
 */
export class JwtBearerScheme implements AuthScheme {
  readonly type = 'jwt_bearer';
  readonly defaultInject = { headers: { Authorization: 'Bearer {{access_token}}' } };
  readonly computed = ['access_token'];
  readonly fields: readonly FieldInfo[];
  readonly needsConnection: boolean;
  private readonly signer: JwtSigner;
  private readonly cache: TokenCache<string>;
  private readonly tokenUrl: Template;
  private readonly request: Required<Omit<TokenRequestConfig, 'params'>> & { params: ReadonlyArray<readonly [string, Template]> };
  private readonly response: TokenResponseMap;
  private readonly refreshBeforeMs: number;

  constructor(
    readonly config: AuthConfig,
    private readonly now: () => number = Date.now,
  ) {
    const tr = (config.token_request as TokenRequestConfig | undefined) ?? {};
    const style = tr.assertion ?? 'form';
    const scopes = config.scopes as string[] | undefined;
    const defaultClaims: Record<string, string> = {};
    if (style === 'form') {
      // RFC 7523 §3: the token endpoint is the audience; Google reads the scope from the assertion.
      defaultClaims.aud = config.token_url as string;
      if (scopes && scopes.length > 0) defaultClaims.scope = scopes.join(' ');
    }
    this.signer = new JwtSigner(config, { ttl: style === 'form' ? 3600 : 540, claims: defaultClaims });
    this.tokenUrl = compileTemplate(config.token_url as string);
    this.request = {
      assertion: style,
      method: tr.method ?? 'POST',
      headers: { accept: 'application/json', ...Object.fromEntries(Object.entries(tr.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v])) },
      params: Object.entries(tr.params ?? {}).map(([k, v]) => [k, compileTemplate(v)] as const),
    };
    const map = config.token_response as Partial<TokenResponseMap> | undefined;
    this.response = map ? { access_token: map.access_token ?? 'access_token', expires_in: map.expires_in, expires_at: map.expires_at } : { access_token: 'access_token', expires_in: 'expires_in' };
    this.refreshBeforeMs = ((config.refresh_before as number | undefined) ?? 60) * 1000;
    this.fields = this.signer.fields;
    const urlNames = [...this.tokenUrl.names, ...this.request.params.flatMap(([, t]) => t.names)];
    this.needsConnection = this.signer.needsConnection || urlNames.some((n) => n !== 'entity');
    this.cache = new TokenCache(now);
  }

  check(ctx: SchemeCheckContext): SchemeProblem[] {
    const problems = this.signer.check(ctx);
    const known = new Set([...ctx.names, ...this.fields.map((f) => f.name)]);
    const unknown = (key: (string | number)[], t: Template) => {
      for (const n of t.names) if (!known.has(n)) problems.push({ key, message: `${key.join('.')}: {{${n}}} is neither entity, a param nor a connection field` });
    };
    unknown(['token_url'], this.tokenUrl);
    if (this.request.method === 'GET' && this.request.assertion === 'form') {
      problems.push({ key: ['token_request', 'method'], message: 'token_request.method: GET cannot carry the form body of assertion: form; use POST, or assertion: bearer' });
    }
    for (const [k, t] of this.request.params) unknown(['token_request', 'params', k], t);
    const keys = Object.keys((this.config.token_response as object | undefined) ?? {});
    for (const k of keys) {
      if (!['access_token', 'expires_in', 'expires_at'].includes(k)) problems.push({ key: ['token_response', k], message: `token_response.${k}: unknown; expected access_token, expires_in, expires_at` });
    }
    return problems;
  }

  accept(input: Record<string, unknown>): AcceptedCredentials {
    return this.signer.accept(input);
  }

  async values(req: CredentialRequest): Promise<Record<string, string>> {
    const access_token = await this.cache.get(cacheKey(req), () => this.mint(req));
    return { ...this.signer.templateValues(req), access_token };
  }

  forget(req: CredentialRequest): void {
    this.cache.delete(cacheKey(req));
  }

  private async mint(req: CredentialRequest) {
    const values = this.signer.templateValues(req);
    let url: string;
    let params: Array<[string, string]>;
    try {
      // Values go into the URL encoded, so a param can never add a path segment or a query.
      const encoded = Object.fromEntries(Object.entries(values).map(([k, v]) => [k, encodeURIComponent(v)]));
      url = this.tokenUrl.render(encoded);
      params = this.request.params.map(([k, t]) => [k, t.render(values)]);
    } catch (err) {
      if (err instanceof MissingValueError) {
        throw new CredproxyError('connection_missing', `the connection of entity "${req.entity}" to "${req.integration.name}" lacks ${err.missing}`);
      }
      throw err;
    }
    const now = this.now();
    const { jwt } = await this.signer.sign(req, now);
    const headers = { ...this.request.headers };
    let body: string | undefined;
    if (this.request.assertion === 'form') {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams([['grant_type', GRANT_TYPE], ['assertion', jwt], ...params]).toString();
    } else {
      headers.authorization = `Bearer ${jwt}`;
    }
    const token = await exchangeToken({ url, method: this.request.method, headers, body, dispatcher: req.dispatcher, log: req.ctx?.log, redact: [jwt] }, this.response, now);
    const expires = token.expires_at ?? now + DEFAULT_LIFETIME_MS;
    return { value: token.access_token, until: expires - Math.min(this.refreshBeforeMs, (expires - now) / 2) };
  }
}
