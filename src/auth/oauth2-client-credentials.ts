import type { AuthConfig } from '../config/types.js';
import { CredproxyError } from '../errors.js';
import { Backoff } from '../oauth/backoff.js';
import { refreshBeforeMs, withParams, type OAuthAuthConfig } from '../oauth/client-config.js';
import { SingleFlight } from '../oauth/single-flight.js';
import { requestToken, TokenEndpointError } from '../oauth/token-client.js';
import type { Connection } from '../store/types.js';
import { connectionId } from '../store/label.js';
import { acceptFields } from './fields.js';
import type { AcceptedCredentials, AuthScheme, CredentialRequest, FieldInfo, SchemeContext } from './types.js';

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
  readonly needsConnection: boolean;
  readonly computed: readonly string[] = ['access_token'];
  readonly defaultInject = { headers: { Authorization: 'Bearer {{access_token}}' } };
  readonly fields: readonly FieldInfo[] = [
    { name: 'client_id', secret: false, optional: false },
    { name: 'client_secret', secret: true, optional: false },
  ];
  private readonly tokens = new Map<string, CachedToken>();
  private readonly flights = new SingleFlight();
  private readonly backoff = new Backoff();

  constructor(readonly config: AuthConfig) {
    const c = config as OAuthAuthConfig;
    this.needsConnection = !(c.client_id && c.client_secret);
  }

  accept(input: Record<string, unknown>): AcceptedCredentials {
    return { credentials: acceptFields(this.fields, input) };
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
      (t.expires_at === undefined || t.expires_at - Date.now() > refreshBeforeMs(this.config as OAuthAuthConfig));
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
    const c = withParams(this.config as OAuthAuthConfig, own?.params ?? {});
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
