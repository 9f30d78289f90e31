import type { AuthDefinition, SchemeConfig } from '../config/scheme-definition.js';
import { common } from '../config/schema.js';
import { obj } from '../config/spec.js';
import { traits } from './fields.js';
import { keyFiles } from './keys.js';
import { JwtSigner, cacheKey, jwtKeysSpec } from './jwt-signer.js';
import { TokenCache } from './token-cache.js';
import { defineScheme, type AcceptedCredentials, type AuthScheme, type CredentialRequest } from './types.js';

/** A token is handed out until this long before it expires, so it never arrives stale. */
export const JWT_MARGIN_MS = 30_000;

const spec = obj({ ...common, ...jwtKeysSpec }, ['algorithm']);
type JwtConfig = SchemeConfig<typeof spec>;
const signerFor = (config: JwtConfig) => new JwtSigner(config, { ttl: 300 });

/**
 * `jwt`: credproxy signs a JWT per entity (jose) with the key in the YAML or the entity's own
 * key from its connection, and reuses it until 30 s before it expires.
 */
export class JwtScheme implements AuthScheme {
  readonly type = 'jwt';
  private readonly signer: JwtSigner;
  private readonly cache: TokenCache<string>;

  constructor(
    definition: AuthDefinition<JwtConfig>,
    private readonly now: () => number = Date.now,
  ) {
    this.signer = signerFor(definition.config);
    this.cache = new TokenCache(now);
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

export const jwt = defineScheme<typeof spec>({
  type: 'jwt',
  spec,
  describe: (config, ctx) => {
    // The signer parses the key and the claim templates; it holds no minted token.
    const signer = signerFor(config);
    return {
      traits: traits({
        fields: signer.fields,
        computed: ['jwt'],
        needsConnection: signer.needsConnection,
        defaultInject: { headers: { Authorization: 'Bearer {{jwt}}' } },
      }),
      problems: signer.check(ctx),
      resolved: keyFiles(config.private_key),
    };
  },
  create: (definition) => new JwtScheme(definition),
});
