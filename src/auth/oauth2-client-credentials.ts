import type { AuthDefinition, SchemeConfig } from '../config/scheme-definition.js';
import { common } from '../config/schema.js';
import { obj } from '../config/spec.js';
import { CredproxyError } from '../errors.js';
import { Backoff } from '../oauth/backoff.js';
import { oauthClientSpec, refreshBeforeMs, withParams } from '../oauth/client-config.js';
import { SingleFlight } from '../oauth/single-flight.js';
import { requestToken, TokenEndpointError } from '../oauth/token-client.js';
import type { Connection } from '../store/types.js';
import { connectionId } from '../store/label.js';
import { acceptFields, traits } from './fields.js';
import { defineScheme, type AcceptedCredentials, type AuthScheme, type CredentialRequest, type FieldInfo, type SchemeContext } from './types.js';

const spec = obj({ ...common, ...oauthClientSpec }, ['token_url']);
type ClientCredentialsConfig = SchemeConfig<typeof spec>;

const FIELDS: readonly FieldInfo[] = [
  { name: 'client_id', secret: false, optional: false },
  { name: 'client_secret', secret: true, optional: false },
];

interface CachedToken {
  access_token: string;
  expires_at: number | undefined;
}

/**
 * OAuth 2.0 client credentials (RFC 6749 §4.4). With the client in the YAML, one token per
 * integration serves every entity and no connection is needed; without it, each connection
 * supplies its own client_id/client_secret and gets its own token. Tokens live in memory
 * only (a new one is a token request away), until shortly before expiry or until the
 * upstream refuses them.
 */
export class OAuth2ClientCredentialsScheme implements AuthScheme {
  readonly type = 'oauth2_client_credentials';
  private readonly config: ClientCredentialsConfig;
  private readonly tokens = new Map<string, CachedToken>();
  private readonly flights = new SingleFlight();
  private readonly backoff = new Backoff();

  constructor(definition: AuthDefinition<ClientCredentialsConfig>) {
    this.config = definition.config;
  }

  accept(input: Record<string, unknown>): AcceptedCredentials {
    return { credentials: acceptFields(FIELDS, input) };
  }

  refreshable(): boolean {
    return true;
  }

  async values(req: CredentialRequest): Promise<Record<string, string>> {
    const own = req.connection?.credentials.client_id !== undefined ? req.connection : undefined;
    const key = own ? connectionId(own.entity, own.integration, own.label) : `*\n${req.integration.name}`;
    const usable = (t: CachedToken | undefined) =>
      t !== undefined &&
      t.access_token !== req.stale &&
      (t.expires_at === undefined || t.expires_at - Date.now() > refreshBeforeMs(this.config));
    const cached = this.tokens.get(key);
    if (usable(cached)) return { access_token: cached!.access_token };
    if (!req.ctx) throw new CredproxyError('refresh_failed', 'no token endpoint client available');
    const ctx = req.ctx;
    const wait = this.backoff.waitFor(key);
    if (wait > 0) throw new CredproxyError('refresh_failed', `the token request for "${req.integration.name}" failed recently; next attempt in ${Math.ceil(wait / 1000)} s`);
    const token = await this.flights.run(key, async () => {
      const again = this.tokens.get(key);
      if (usable(again)) return again!;
      return this.fetchToken(ctx, key, req.integration.name, own);
    });
    return { access_token: token.access_token };
  }

  private async fetchToken(ctx: SchemeContext, key: string, name: string, own: Connection | undefined): Promise<CachedToken> {
    const c = withParams(this.config, own?.params ?? {});
    const client = own ? { id: own.credentials.client_id!, secret: own.credentials.client_secret } : { id: c.client_id!, secret: c.client_secret };
    const now = Date.now();
    try {
      const set = await requestToken(c, client, { type: 'client_credentials' }, { dispatcher: ctx.dispatcher, timeoutMs: ctx.timeoutMs });
      const token = { access_token: set.access_token, expires_at: set.expires_in === undefined ? undefined : now + set.expires_in * 1000 };
      this.tokens.set(key, token);
      this.backoff.succeeded(key);
      ctx.log.info({ integration: name, entity: own?.entity }, 'client credentials token obtained');
      return token;
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      this.tokens.delete(key);
      if (own && err instanceof TokenEndpointError && err.kind === 'rejected') {
        // The connection's own client was refused: the user must supply a new one.
        await ctx.store.put({ ...own, status: 'expired', reason: `token request refused: ${err.oauthError}`, updated_at: now }).catch(() => {});
        throw new CredproxyError('connection_expired', `the client of entity "${own.entity}" for "${name}" was refused (${err.oauthError}); store new client credentials`);
      }
      this.backoff.failed(key);
      ctx.log.warn({ integration: name, entity: own?.entity, err: msg }, 'client credentials token request failed');
      throw new CredproxyError('refresh_failed', `the token request for "${name}" failed: ${msg}`);
    }
  }
}

export const oauth2ClientCredentials = defineScheme<typeof spec>({
  type: 'oauth2_client_credentials',
  spec,
  describe: (config) => ({
    traits: traits({
      fields: FIELDS,
      computed: ['access_token'],
      // With the client in the YAML, one token serves every entity (DESIGN.md).
      needsConnection: !(config.client_id && config.client_secret),
      defaultInject: { headers: { Authorization: 'Bearer {{access_token}}' } },
      hostUrlKeys: ['token_url'],
      paramUrlKeys: ['token_url'],
    }),
  }),
  create: (definition) => new OAuth2ClientCredentialsScheme(definition),
});
