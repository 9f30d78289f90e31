import type { AuthDefinition } from '../config/scheme-definition.js';
import { CredproxyError } from '../errors.js';
import { acceptFields } from './fields.js';
import type { AcceptedCredentials, AuthScheme, CredentialRequest, FieldInfo } from './types.js';
import { jwtTimes, UserJwtVerifier } from './user-jwt.js';

/**
 * The shared shape of schemes whose connection simply holds the secret fields
 * (api_key, bearer, basic): each file says which fields and what it injects by default.
 * Schemes built with `readsJwt` (bearer, api_key) treat a secret that is a JWT as one: its
 * expiry becomes the connection's, and `jwt_verify` checks it when it is stored.
 */
export abstract class StaticScheme<C = unknown> implements AuthScheme {
  abstract readonly type: string;
  readonly fields: readonly FieldInfo[];
  readonly config: C;
  readonly jwtVerifier?: UserJwtVerifier;

  constructor(
    definition: AuthDefinition<C>,
    private readonly readsJwt = false,
    jwtVerify?: Record<string, string>,
  ) {
    this.fields = definition.traits.fields;
    this.config = definition.config;
    if (readsJwt && jwtVerify) this.jwtVerifier = new UserJwtVerifier(jwtVerify);
  }

  accept(input: Record<string, unknown>, now = Date.now()): AcceptedCredentials {
    const credentials = acceptFields(this.fields, input);
    if (!this.readsJwt) return { credentials };
    let expires_at: number | undefined;
    for (const f of this.fields) {
      const value = credentials[f.name];
      if (!f.secret || value === undefined) continue;
      const times = jwtTimes(value);
      if (!times) continue;
      if (times.exp !== undefined && times.exp <= now) {
        throw new CredproxyError('bad_request', `credentials.${f.name}: the JWT expired at ${new Date(times.exp).toISOString()}; supply a current one`);
      }
      if (times.nbf !== undefined && times.nbf > now + 60_000) {
        throw new CredproxyError('bad_request', `credentials.${f.name}: the JWT is not valid before ${new Date(times.nbf).toISOString()}`);
      }
      if (times.exp !== undefined) expires_at = Math.min(expires_at ?? Infinity, times.exp);
    }
    const first = this.fields[0]!;
    if (this.jwtVerifier && !jwtTimes(credentials[first.name] ?? '')) {
      throw new CredproxyError('bad_request', `credentials.${first.name}: this integration accepts only JWTs (jwt_verify), and this is not one`);
    }
    return expires_at === undefined ? { credentials } : { credentials, expires_at };
  }

  async verify(accepted: AcceptedCredentials): Promise<void> {
    const first = this.fields[0]!;
    const token = accepted.credentials[first.name];
    if (this.jwtVerifier && token !== undefined) await this.jwtVerifier.verify(first.name, token);
  }

  values(req: CredentialRequest): Record<string, string> {
    const c = req.connection;
    // A user's JWT past its exp is never sent: the upstream would refuse it anyway, less clearly.
    if (c?.expires_at !== undefined && c.expires_at <= Date.now()) {
      throw new CredproxyError(
        'connection_expired',
        `the ${this.type} credential of entity "${c.entity}" for "${c.integration}" expired at ${new Date(c.expires_at).toISOString()}; store a new one`,
      );
    }
    return c?.credentials ?? {};
  }
}
