import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { createRemoteJWKSet, decodeJwt, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { CredproxyError } from '../errors.js';
import { KeyError, readKeyText } from './keys.js';
import type { SchemeProblem } from './types.js';

/**
 * JWTs that users supply as bearer tokens or API keys. Their `exp` and `nbf` are read without
 * any key (so an expired token is answered 424 instead of being sent); with `jwt_verify` in
 * the scheme, the signature, issuer and audience are checked with jose when it is stored.
 *
 * `jwt_verify` keys (all strings, as the YAML map holds them):
 *   jwks_url    where the issuer publishes its keys (JWKS), or
 *   public_key  a PEM public key or certificate, a public JWK (JSON), or file:path
 *   issuer      the `iss` the token must carry
 *   audience    the `aud` it must carry (several: comma-separated, any one suffices)
 *   algorithms  accepted JWS algorithms, comma-separated (default: what the key allows)
 *   clock_skew  seconds of tolerance for nbf/exp/iat while verifying (default 30)
 */
export const JWT_VERIFY_KEYS = ['jwks_url', 'public_key', 'issuer', 'audience', 'algorithms', 'clock_skew'] as const;
const ALGORITHMS = new Set(['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519']);
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/** The token's own times, ms since epoch. */
export interface JwtTimes {
  exp?: number;
  nbf?: number;
}

/** exp/nbf of a value that is a JWT; undefined when it is not one (an opaque token). */
export function jwtTimes(value: string): JwtTimes | undefined {
  if (!JWT_SHAPE.test(value)) return undefined;
  let payload: JWTPayload;
  try {
    payload = decodeJwt(value);
  } catch {
    return undefined;
  }
  const ms = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v * 1000 : undefined);
  return { exp: ms(payload.exp), nbf: ms(payload.nbf) };
}

export class UserJwtVerifier {
  readonly problems: SchemeProblem[] = [];
  private readonly getKey?: KeyObject | JWTVerifyGetKey;
  private readonly issuer?: string;
  private readonly audience?: string[];
  private readonly algorithms?: string[];
  private readonly skew: number;
  readonly source: { jwks_url: string | null; issuer: string | null; audience: string[] | null };

  constructor(readonly config: Readonly<Record<string, string>>) {
    const problem = (key: string, message: string) => this.problems.push({ key: ['jwt_verify', key], message: `jwt_verify.${key}: ${message}` });
    for (const k of Object.keys(config)) {
      if (!(JWT_VERIFY_KEYS as readonly string[]).includes(k)) problem(k, `unknown key; expected ${JWT_VERIFY_KEYS.join(', ')}`);
    }
    const { jwks_url, public_key } = config;
    if ((jwks_url === undefined) === (public_key === undefined)) {
      this.problems.push({ key: ['jwt_verify'], message: 'jwt_verify: give exactly one of jwks_url and public_key' });
    }
    if (jwks_url !== undefined) {
      try {
        const u = new URL(jwks_url);
        if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error('not http(s)');
        this.getKey = createRemoteJWKSet(u, { timeoutDuration: 10_000 });
      } catch {
        problem('jwks_url', `"${jwks_url}" is not an http(s) URL`);
      }
    }
    if (public_key !== undefined) {
      try {
        this.getKey = publicKey(public_key);
      } catch (err) {
        problem('public_key', err instanceof KeyError ? err.message : 'does not parse');
      }
    }
    this.issuer = config.issuer;
    this.audience = config.audience?.split(',').map((s) => s.trim()).filter(Boolean);
    this.algorithms = config.algorithms?.split(/[\s,]+/).filter(Boolean);
    for (const a of this.algorithms ?? []) if (!ALGORITHMS.has(a)) problem('algorithms', `"${a}" is not a JWS algorithm credproxy accepts (${[...ALGORITHMS].join(', ')})`);
    this.skew = config.clock_skew === undefined ? 30 : Number(config.clock_skew);
    if (!Number.isInteger(this.skew) || this.skew < 0 || this.skew > 3600) problem('clock_skew', 'must be a whole number of seconds from 0 to 3600');
    this.source = { jwks_url: jwks_url ?? null, issuer: this.issuer ?? null, audience: this.audience ?? null };
  }

  /** Verifies signature, issuer, audience and times; a bad token is a 400 that says why, never repeating it. */
  async verify(field: string, token: string): Promise<void> {
    const options = { issuer: this.issuer, audience: this.audience, algorithms: this.algorithms, clockTolerance: this.skew };
    try {
      if (typeof this.getKey === 'function') await jwtVerify(token, this.getKey, options);
      else await jwtVerify(token, this.getKey!, options);
    } catch (err) {
      throw explain(field, err, this.source.jwks_url);
    }
  }
}

function publicKey(value: string): KeyObject {
  const text = readKeyText(value).trim();
  if (text.startsWith('{')) {
    let jwk: JsonWebKey;
    try {
      jwk = JSON.parse(text) as JsonWebKey;
    } catch {
      throw new KeyError('looks like JSON but does not parse');
    }
    if (jwk.d !== undefined) throw new KeyError('this JWK holds a private key; give only the public part');
    try {
      return createPublicKey({ key: jwk, format: 'jwk' });
    } catch (err) {
      throw new KeyError(`the JWK does not parse (${(err as Error).message.split('\n')[0]})`);
    }
  }
  const pem = !text.includes('\n') && text.includes('\\n') ? text.replace(/\\n/g, '\n') : text;
  if (/PRIVATE KEY-----/.test(pem)) throw new KeyError('this is a private key; give the public key');
  try {
    return createPublicKey(pem);
  } catch {
    throw new KeyError('not a PEM public key or certificate, a public JWK (JSON), or file:path');
  }
}

/** jose's verdicts in words a user can act on. */
function explain(field: string, err: unknown, jwksUrl: string | null): CredproxyError {
  const bad = (why: string) => new CredproxyError('bad_request', `credentials.${field}: the JWT ${why}`);
  if (err instanceof errors.JWSSignatureVerificationFailed) return bad('signature does not verify with the configured key');
  if (err instanceof errors.JWKSNoMatchingKey) return bad('is signed by a key that is not in the issuer\'s key set (JWKS)');
  if (err instanceof errors.JWKSMultipleMatchingKeys) return bad('matches several keys of the key set and none verifies it');
  if (err instanceof errors.JOSEAlgNotAllowed) return bad('uses an algorithm that is not allowed here');
  if (err instanceof errors.JWTExpired) return bad('has expired');
  if (err instanceof errors.JWTClaimValidationFailed) return bad(`has a wrong or missing "${err.claim}" claim (${err.reason})`);
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid || err instanceof errors.JOSENotSupported) return bad('is malformed or uses an unsupported algorithm');
  if (jwksUrl !== null && (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid || err instanceof TypeError || err instanceof errors.JOSEError)) {
    return new CredproxyError('upstream_error', `the JWT could not be checked: the key set at ${jwksUrl ?? 'jwks_url'} could not be fetched or read`);
  }
  return bad('could not be verified');
}
