import type { AuthDefinition, SchemeConfig } from '../config/scheme-definition.js';
import { common, headerMap, scopes, stringMap, templatedUrl } from '../config/schema.js';
import { int, obj, str } from '../config/spec.js';
import { MissingValueError, compileTemplate, type Template } from '../config/template.js';
import { CredproxyError } from '../errors.js';
import { traits } from './fields.js';
import { keyFiles } from './keys.js';
import { JwtSigner, cacheKey, jwtKeysSpec } from './jwt-signer.js';
import { TokenCache } from './token-cache.js';
import { exchangeToken, type TokenResponseMap } from './token-exchange.js';
import { defineScheme, type AcceptedCredentials, type AuthScheme, type CredentialRequest, type SchemeCheckContext, type SchemeProblem } from './types.js';

const spec = obj(
  {
    ...common,
    ...jwtKeysSpec,
    token_url: templatedUrl(),
    scopes,
    token_response: stringMap,
    // How the signed assertion reaches the token endpoint. assertion — form: RFC 7523
    // (`grant_type` + `assertion` in a form body); bearer: `Authorization: Bearer <jwt>` (GitHub Apps).
    token_request: obj({
      assertion: str({ enum: ['form', 'bearer'] }),
      method: str({ enum: ['POST', 'GET', 'PUT'] }),
      headers: headerMap,
      params: stringMap,
    }),
    refresh_before: int(0, 86400),
  },
  ['algorithm', 'token_url'],
);
type JwtBearerConfig = SchemeConfig<typeof spec>;
type TokenRequestConfig = NonNullable<JwtBearerConfig['token_request']>;

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
  private readonly parsed: ParsedJwtBearer;
  private readonly cache: TokenCache<string>;

  constructor(
    definition: AuthDefinition<JwtBearerConfig>,
    private readonly now: () => number = Date.now,
  ) {
    this.parsed = parse(definition.config);
    this.cache = new TokenCache(now);
  }

  private get signer(): JwtSigner {
    return this.parsed.signer;
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
    const { tokenUrl, request, response, refreshBeforeMs } = this.parsed;
    const values = this.signer.templateValues(req);
    let url: string;
    let params: Array<[string, string]>;
    try {
      // Values go into the URL encoded, so a param can never add a path segment or a query.
      const encoded = Object.fromEntries(Object.entries(values).map(([k, v]) => [k, encodeURIComponent(v)]));
      url = tokenUrl.render(encoded);
      params = request.params.map(([k, t]) => [k, t.render(values)]);
    } catch (err) {
      if (err instanceof MissingValueError) {
        throw new CredproxyError('connection_missing', `the connection of entity "${req.entity}" to "${req.integration.name}" lacks ${err.missing}`);
      }
      throw err;
    }
    const now = this.now();
    const { jwt } = await this.signer.sign(req, now);
    const headers = { ...request.headers };
    let body: string | undefined;
    if (request.assertion === 'form') {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams([['grant_type', GRANT_TYPE], ['assertion', jwt], ...params]).toString();
    } else {
      headers.authorization = `Bearer ${jwt}`;
    }
    const token = await exchangeToken({ url, method: request.method, headers, body, dispatcher: req.dispatcher, log: req.ctx?.log, redact: [jwt] }, response, now);
    const expires = token.expires_at ?? now + DEFAULT_LIFETIME_MS;
    return { value: token.access_token, until: expires - Math.min(refreshBeforeMs, (expires - now) / 2) };
  }
}

/** What a jwt_bearer entry says, parsed once: by the definition for its checks, by the scheme to mint. */
interface ParsedJwtBearer {
  signer: JwtSigner;
  tokenUrl: Template;
  request: Required<Omit<TokenRequestConfig, 'params' | 'headers'>> & { headers: Record<string, string>; params: ReadonlyArray<readonly [string, Template]> };
  response: TokenResponseMap;
  refreshBeforeMs: number;
  /** names the URL and form templates use */
  urlNames: string[];
}

function parse(config: JwtBearerConfig): ParsedJwtBearer {
  const tr: TokenRequestConfig = config.token_request ?? {};
  const style = tr.assertion ?? 'form';
  const defaultClaims: Record<string, string> = {};
  if (style === 'form') {
    // RFC 7523 §3: the token endpoint is the audience; Google reads the scope from the assertion.
    defaultClaims.aud = config.token_url;
    if (config.scopes && config.scopes.length > 0) defaultClaims.scope = config.scopes.join(' ');
  }
  const signer = new JwtSigner(config, { ttl: style === 'form' ? 3600 : 540, claims: defaultClaims });
  const tokenUrl = compileTemplate(config.token_url);
  const request = {
    assertion: style,
    method: tr.method ?? 'POST',
    headers: { accept: 'application/json', ...Object.fromEntries(Object.entries(tr.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v])) },
    params: Object.entries(tr.params ?? {}).map(([k, v]) => [k, compileTemplate(v)] as const),
  };
  const map = config.token_response;
  const response = map ? { access_token: map.access_token ?? 'access_token', expires_in: map.expires_in, expires_at: map.expires_at } : { access_token: 'access_token', expires_in: 'expires_in' };
  const urlNames = [...tokenUrl.names, ...request.params.flatMap(([, t]) => t.names)];
  return { signer, tokenUrl, request, response, refreshBeforeMs: (config.refresh_before ?? 60) * 1000, urlNames };
}

function check(config: JwtBearerConfig, p: ParsedJwtBearer, ctx: SchemeCheckContext): SchemeProblem[] {
  const problems = p.signer.check(ctx);
  const known = new Set([...ctx.names, ...p.signer.fields.map((f) => f.name)]);
  const unknown = (key: (string | number)[], t: Template) => {
    for (const n of t.names) if (!known.has(n)) problems.push({ key, message: `${key.join('.')}: {{${n}}} is neither entity, a param nor a connection field` });
  };
  unknown(['token_url'], p.tokenUrl);
  if (p.request.method === 'GET' && p.request.assertion === 'form') {
    problems.push({ key: ['token_request', 'method'], message: 'token_request.method: GET cannot carry the form body of assertion: form; use POST, or assertion: bearer' });
  }
  for (const [k, t] of p.request.params) unknown(['token_request', 'params', k], t);
  for (const k of Object.keys(config.token_response ?? {})) {
    if (!['access_token', 'expires_in', 'expires_at'].includes(k)) problems.push({ key: ['token_response', k], message: `token_response.${k}: unknown; expected access_token, expires_in, expires_at` });
  }
  return problems;
}

export const jwtBearer = defineScheme<typeof spec>({
  type: 'jwt_bearer',
  spec,
  describe: (config, ctx) => {
    const parsed = parse(config);
    return {
      traits: traits({
        fields: parsed.signer.fields,
        computed: ['access_token'],
        needsConnection: parsed.signer.needsConnection || parsed.urlNames.some((n) => n !== 'entity'),
        defaultInject: { headers: { Authorization: 'Bearer {{access_token}}' } },
        // Its token_url may also name entity and fields, so it checks its own templates.
        hostUrlKeys: ['token_url'],
      }),
      problems: check(config, parsed, ctx),
      resolved: keyFiles(config.private_key),
    };
  },
  create: (definition) => new JwtBearerScheme(definition),
});
