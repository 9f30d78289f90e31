import type { AuthConfig } from '../config/types.js';
import { JwtSigner, cacheKey } from './jwt-signer.js';
import { TokenCache } from './token-cache.js';
import type { AcceptedCredentials, AuthScheme, CredentialRequest, FieldInfo, SchemeCheckContext, SchemeProblem } from './types.js';

/** A token is handed out until this long before it expires, so it never arrives stale. */
export const JWT_MARGIN_MS = 30_000;

/**
 * `jwt`: credproxy signs a JWT per entity (jose) with the key in the YAML or the entity's own
 * key from its connection, and reuses it until 30 s before it expires.
 */
export class JwtScheme implements AuthScheme {
  readonly type = 'jwt';
  readonly defaultInject = { headers: { Authorization: 'Bearer {{jwt}}' } };
  readonly computed = ['jwt'];
  readonly fields: readonly FieldInfo[];
  readonly needsConnection: boolean;
  private readonly signer: JwtSigner;
  private readonly cache: TokenCache<string>;

  constructor(
    readonly config: AuthConfig,
    private readonly now: () => number = Date.now,
  ) {
    this.signer = new JwtSigner(config, { ttl: 300 });
    this.fields = this.signer.fields;
    this.needsConnection = this.signer.needsConnection;
    this.cache = new TokenCache(now);
  }

  check(ctx: SchemeCheckContext): SchemeProblem[] {
    return this.signer.check(ctx);
  }

  accept(input: Record<string, unknown>): AcceptedCredentials {
    return this.signer.accept(input);
  }

  async values(req: CredentialRequest): Promise<Record<string, string>> {
    const jwt = await this.cache.get(cacheKey(req), async () => {
      const signed = await this.signer.sign(req, this.now());
      return { value: signed.jwt, until: signed.exp - JWT_MARGIN_MS };
    });
    return { ...this.signer.templateValues(req), jwt };
  }

  forget(req: CredentialRequest): void {
    this.cache.delete(cacheKey(req));
  }
}
