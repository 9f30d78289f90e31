import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { privateKey } from '../config/schema.js';
import { int, list, map, oneOf, str, type SpecValue } from '../config/spec.js';
import type { FieldConfig } from '../config/types.js';
import { CredproxyError } from '../errors.js';
import { CONTROL, acceptFields, checkValue, fieldInfos } from './fields.js';
import { KeyError, readKeyText, signingKey, type SigningKey } from './keys.js';
import { MissingValueError, compileTemplate, type Template } from '../config/template.js';
import type { AcceptedCredentials, CredentialRequest, FieldInfo, SchemeCheckContext, SchemeProblem } from './types.js';

/** The schema keys of a JWT credproxy signs (jwt, jwt_bearer). */
export const jwtKeysSpec = {
  algorithm: str({
    enum: ['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'],
  }),
  private_key: privateKey(),
  key_id: str(),
  ttl: int(1, 86400),
  clock_skew: int(0, 3600),
  claims: map(oneOf('a string, number or list', str(), list(str()))),
};

/** What the signer reads of an entry: the JWT keys, all optional here, and the declared fields. */
export type JwtKeysConfig = Partial<SpecValue<{ kind: 'object'; props: typeof jwtKeysSpec }>> & { fields?: ReadonlyArray<FieldConfig | string> };

/** Claims credproxy sets on every token; the YAML cannot override them. */
const AUTOMATIC = new Set(['iat', 'exp', 'nbf', 'jti']);

/** A JWT signed for one request's entity, and when it expires (ms since epoch). */
export interface SignedJwt {
  jwt: string;
  exp: number;
}

/**
 * The JWT-signing part shared by `jwt` and `jwt_bearer`: the key (from the YAML, checked
 * when the config loads, or from the entity's connection), the claim templates, and the
 * connection fields that implies.
 */
export class JwtSigner {
  readonly algorithm: string;
  readonly ttl: number;
  readonly clockSkew: number;
  readonly fields: readonly FieldInfo[];
  /** the key from the YAML; undefined when each connection brings its own */
  readonly key: SigningKey | undefined;
  private readonly keyInYaml: boolean;
  private readonly keyProblem: string | undefined;
  private readonly keyId: string | undefined;
  private readonly claims: ReadonlyArray<readonly [name: string, value: Template | Template[]]>;
  private readonly claimProblems: SchemeProblem[] = [];
  private readonly written: ReadonlySet<string>;

  constructor(config: JwtKeysConfig, defaults: { ttl: number; claims?: Record<string, string | string[]> }) {
    // The spec requires it; a signer without one refuses every key, which says so.
    this.algorithm = config.algorithm ?? '';
    this.ttl = config.ttl ?? defaults.ttl;
    this.clockSkew = config.clock_skew ?? 0;
    this.keyId = config.key_id;
    const yamlKey = config.private_key;
    this.keyInYaml = yamlKey !== undefined;
    if (yamlKey !== undefined) {
      try {
        this.key = signingKey(readKeyText(yamlKey), this.algorithm);
      } catch (err) {
        if (!(err instanceof KeyError)) throw err;
        this.keyProblem = `private_key: ${err.message}`;
      }
    }
    const declared = fieldInfos(config.fields, []);
    this.fields =
      yamlKey === undefined
        ? [
            ...declared,
            { name: 'private_key', secret: true, optional: false, multiline: true, description: `the entity's own ${this.algorithm} key: PEM or JWK (a secret for HS*)` },
            { name: 'key_id', secret: false, optional: true, description: 'the JWT header kid' },
          ]
        : declared;
    const written = config.claims ?? {};
    this.written = new Set(Object.keys(written));
    const raw = { ...defaults.claims, ...written };
    this.claims = Object.entries(raw).map(([name, v]) => {
      if (AUTOMATIC.has(name)) this.claimProblems.push({ key: ['claims', name], message: `claims.${name}: credproxy sets ${name} itself (iat, exp from ttl, nbf, jti)` });
      return [name, Array.isArray(v) ? v.map(compileTemplate) : compileTemplate(v)] as const;
    });
  }

  /** names the claim templates use */
  get names(): string[] {
    return this.claims.flatMap(([, v]) => (Array.isArray(v) ? v : [v]).flatMap((t) => t.names));
  }

  /** whether a request needs the entity's connection: its key, declared fields, or params in the claims */
  get needsConnection(): boolean {
    return !this.keyInYaml || this.fields.length > 0 || this.names.some((n) => n !== 'entity');
  }

  check(ctx: SchemeCheckContext): SchemeProblem[] {
    const problems = [...this.claimProblems];
    if (this.clockSkew >= this.ttl) problems.push({ key: ['clock_skew'], message: `clock_skew: ${this.clockSkew} s would make every token expire before it is used (ttl is ${this.ttl} s)` });
    if (this.keyProblem) problems.push({ key: ['private_key'], message: this.keyProblem });
    const known = new Set([...ctx.names, ...this.fields.map((f) => f.name)]);
    for (const [name, v] of this.claims) {
      // Defaults derived from other keys (aud from token_url) are checked where they are written.
      if (!this.written.has(name)) continue;
      for (const t of Array.isArray(v) ? v : [v]) {
        for (const n of t.names) {
          if (!known.has(n)) problems.push({ key: ['claims', name], message: `claims.${name}: {{${n}}} is neither entity, a param nor a connection field; known: ${[...known].join(', ')}` });
        }
      }
    }
    return problems;
  }

  /** Checks credentials for the admin API; the connection's own key must parse and fit the algorithm. */
  accept(input: Record<string, unknown>): AcceptedCredentials {
    if (this.key !== undefined) return { credentials: acceptFields(this.fields, input) };
    const { private_key, ...rest } = input;
    if (typeof private_key !== 'string' || private_key.trim() === '') throw new CredproxyError('bad_request', 'credentials.private_key is required (PEM or JWK)');
    // Keys span lines; any other control character is refused as for every credential.
    if (CONTROL.test(private_key.replace(/[\r\n\t]/g, ''))) throw new CredproxyError('bad_request', 'credentials.private_key contains control characters');
    try {
      signingKey(private_key, this.algorithm);
    } catch (err) {
      if (err instanceof KeyError) throw new CredproxyError('bad_request', `credentials.private_key: ${err.message}`);
      throw err;
    }
    const credentials = acceptFields(this.fields.filter((f) => f.name !== 'private_key'), rest);
    if (credentials.key_id !== undefined) checkValue('key_id', credentials.key_id);
    return { credentials: { ...credentials, private_key } };
  }

  /** Template values of one request: the connection's fields (never its key), params, entity. */
  templateValues(req: CredentialRequest): Record<string, string> {
    const { private_key: _k, ...fields } = req.connection?.credentials ?? {};
    return { ...fields, ...req.connection?.params, entity: req.entity };
  }

  /** Signs a fresh token with iat, nbf, exp = iat + ttl and a new jti. */
  async sign(req: CredentialRequest, now: number): Promise<SignedJwt> {
    const values = this.templateValues(req);
    let key = this.key;
    let kid = this.keyId ?? key?.kid;
    if (!key) {
      const own = req.connection?.credentials.private_key;
      if (own === undefined) throw new CredproxyError('connection_missing', `the connection of entity "${req.entity}" to "${req.integration.name}" lacks private_key`);
      try {
        key = signingKey(own, this.algorithm);
      } catch (err) {
        if (!(err instanceof KeyError)) throw err;
        throw new CredproxyError('connection_missing', `the key stored for entity "${req.entity}" in "${req.integration.name}" no longer fits: ${err.message}`);
      }
      kid = req.connection?.credentials.key_id ?? this.keyId ?? key.kid;
    }
    const payload: Record<string, unknown> = {};
    try {
      for (const [name, v] of this.claims) payload[name] = Array.isArray(v) ? v.map((t) => t.render(values)) : v.render(values);
    } catch (err) {
      if (err instanceof MissingValueError) {
        throw new CredproxyError('connection_missing', `the connection of entity "${req.entity}" to "${req.integration.name}" lacks ${err.missing}`);
      }
      throw err;
    }
    // clock_skew backdates iat and nbf for providers whose clock may lag (GitHub advises 60 s).
    const iat = Math.floor(now / 1000) - this.clockSkew;
    const exp = iat + this.ttl;
    const jwt = await new SignJWT(payload)
      .setProtectedHeader({ alg: this.algorithm, typ: 'JWT', ...(kid ? { kid } : {}) })
      .setIssuedAt(iat)
      .setNotBefore(iat)
      .setExpirationTime(exp)
      .setJti(randomUUID())
      .sign(key.key);
    return { jwt, exp: exp * 1000 };
  }
}

/** The cache key of one connection's minted credential; a changed connection (new key, new params) mints anew. */
export function cacheKey(req: CredentialRequest): string {
  const label = req.connection?.label;
  return `${req.integration.name}\n${req.entity}\n${req.connection?.updated_at ?? ''}${label === undefined ? '' : `\n${label}`}`;
}
