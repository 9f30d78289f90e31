import { createHmac, createSign, randomBytes, type KeyObject } from 'node:crypto';
import type { AuthDefinition, SchemeConfig } from '../config/scheme-definition.js';
import { common, privateKey } from '../config/schema.js';
import { obj, str } from '../config/spec.js';
import { CredproxyError } from '../errors.js';
import { fieldInfos, traits } from './fields.js';
import { KeyError, readKeyText, rsaKey, keyFiles } from './keys.js';
import { StaticScheme } from './static-scheme.js';
import { defineScheme, type CredentialRequest, type SchemeProblem, type SignableRequest, type SignedHeaders } from './types.js';

const spec = obj(
  {
    ...common,
    consumer_key: str(),
    consumer_secret: privateKey(),
    signature_method: str({ enum: ['HMAC-SHA1', 'HMAC-SHA256', 'RSA-SHA1', 'PLAINTEXT'] }),
    realm: str(),
  },
  ['consumer_key'],
);
type OAuth1Config = SchemeConfig<typeof spec>;

/** RFC 3986 unreserved characters stay, everything else is %XX of its UTF-8 bytes (RFC 5849 §3.6). */
export function percentEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** application/x-www-form-urlencoded decoding of a query or body (RFC 5849 §3.4.1.3.1). */
export function formPairs(encoded: string): Array<[string, string]> {
  const decode = (v: string) => {
    const plus = v.replace(/\+/g, ' ');
    try {
      return decodeURIComponent(plus);
    } catch {
      return plus;
    }
  };
  return encoded
    .split('&')
    .filter((p) => p !== '')
    .map((p) => {
      const eq = p.indexOf('=');
      return eq === -1 ? [decode(p), ''] : [decode(p.slice(0, eq)), decode(p.slice(eq + 1))];
    });
}

/** The base string URI (§3.4.1.2): lower-case scheme and host, the port only when not the default, no query. */
export function baseStringUri(url: URL): string {
  return `${url.protocol}//${url.host.toLowerCase()}${url.pathname}`;
}

/** The signature base string (§3.4.1): method, base URI and the normalized parameters (§3.4.1.3.2). */
export function signatureBaseString(method: string, url: URL, params: ReadonlyArray<readonly [string, string]>): string {
  const normalized = params
    .map(([k, v]) => [percentEncode(k), percentEncode(v)] as const)
    .sort(([ak, av], [bk, bv]) => (ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  return [method.toUpperCase(), percentEncode(baseStringUri(url)), percentEncode(normalized)].join('&');
}

export type SignatureMethod = 'HMAC-SHA1' | 'HMAC-SHA256' | 'RSA-SHA1' | 'PLAINTEXT';

/** The signature of a base string (§3.4.2 to §3.4.4). */
export function oauthSignature(method: SignatureMethod, base: string, consumerSecret: string | KeyObject, tokenSecret: string): string {
  if (method === 'RSA-SHA1') return createSign('RSA-SHA1').update(base).sign(consumerSecret as KeyObject, 'base64');
  const key = `${percentEncode(consumerSecret as string)}&${percentEncode(tokenSecret)}`;
  if (method === 'PLAINTEXT') return key;
  return createHmac(method === 'HMAC-SHA1' ? 'sha1' : 'sha256', key).update(base).digest('base64');
}

/**
 * `oauth1`: OAuth 1.0a (RFC 5849) signs every request with the consumer key and secret in
 * the YAML (for RSA-SHA1 the secret is the RSA private key) and the connection's token and
 * token secret. Form-encoded bodies are part of the signature, so they are read first.
 */
export class OAuth1Scheme extends StaticScheme<OAuth1Config> {
  readonly type = 'oauth1';
  private readonly secret: ConsumerSecret;

  constructor(
    definition: AuthDefinition<OAuth1Config>,
    private readonly clock: { now: () => number; nonce: () => string } = { now: Date.now, nonce: () => randomBytes(16).toString('hex') },
  ) {
    super(definition);
    // The definition checked it when the config loaded; a problem here cannot be reached.
    this.secret = consumerSecret(definition.config);
  }

  async sign(request: SignableRequest, cred: CredentialRequest): Promise<SignedHeaders> {
    const c = cred.connection?.credentials ?? {};
    const oauth: Array<[string, string]> = [
      ['oauth_consumer_key', this.config.consumer_key],
      ['oauth_nonce', this.clock.nonce()],
      ['oauth_signature_method', this.secret.method],
      ['oauth_timestamp', String(Math.floor(this.clock.now() / 1000))],
      ['oauth_token', c.token ?? ''],
      // oauth_version is optional (RFC 5849 §3.1) and left out, as in the RFC's own examples.
    ];
    const params = [...oauth, ...formPairs(request.url.search.slice(1)), ...(await this.formBody(request))];
    const base = signatureBaseString(request.method, request.url, params);
    oauth.push(['oauth_signature', oauthSignature(this.secret.method, base, this.secret.key, c.token_secret ?? '')]);
    const realm = this.config.realm;
    const parts = oauth.map(([k, v]) => `${k}="${percentEncode(v)}"`);
    if (realm !== undefined) parts.unshift(`realm="${realm.replace(/["\\]/g, '\\$&')}"`);
    return { headers: [['Authorization', `OAuth ${parts.join(', ')}`]] };
  }

  /** §3.4.1.3.1: the body's parameters count when it is single-part form-encoded. */
  private async formBody(request: SignableRequest): Promise<Array<[string, string]>> {
    let type = '';
    for (let i = 0; i < request.headers.length; i += 2) {
      if (request.headers[i]!.toLowerCase() === 'content-type') type = request.headers[i + 1]!;
    }
    if (!/^application\/x-www-form-urlencoded\s*(;|$)/i.test(type)) return [];
    const body = await request.body();
    if (body === undefined) {
      throw new CredproxyError('payload_too_large', 'oauth1 signs form-encoded bodies, and this one is larger than limits.replay_body_bytes (or came while limits.replay_budget_bytes was spent); raise that limit to send it');
    }
    return body === null ? [] : formPairs(body.toString('utf8'));
  }
}

interface ConsumerSecret {
  method: SignatureMethod;
  /** the shared secret, or the RSA private key for RSA-SHA1 */
  key: string | KeyObject;
  problems: SchemeProblem[];
}

function consumerSecret(config: OAuth1Config): ConsumerSecret {
  const method = config.signature_method ?? 'HMAC-SHA1';
  const raw = config.consumer_secret;
  if (method === 'RSA-SHA1') {
    try {
      if (raw === undefined) throw new KeyError('RSA-SHA1 needs the RSA private key here');
      return { method, key: rsaKey(readKeyText(raw)), problems: [] };
    } catch (err) {
      if (!(err instanceof KeyError)) throw err;
      return { method, key: '', problems: [{ key: raw === undefined ? [] : ['consumer_secret'], message: `consumer_secret: ${err.message}` }] };
    }
  }
  if (raw === undefined) return { method, key: '', problems: [{ key: [], message: `consumer_secret: is required for ${method}` }] };
  return { method, key: raw, problems: [] };
}

export const oauth1 = defineScheme<typeof spec>({
  type: 'oauth1',
  spec,
  describe: (config) => ({
    traits: traits({
      fields: fieldInfos(config.fields, [
        { name: 'token', secret: true, optional: false },
        { name: 'token_secret', secret: true, optional: false },
      ]),
      defaultInject: {},
      signs: true,
    }),
    problems: consumerSecret(config).problems,
    resolved: keyFiles(config.consumer_secret),
  }),
  create: (definition) => new OAuth1Scheme(definition),
});
