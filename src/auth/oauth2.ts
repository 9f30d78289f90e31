import type { AuthDefinition, SchemeConfig } from '../config/scheme-definition.js';
import { common, scopes, stringMap, templatedUrl } from '../config/schema.js';
import { bool, obj, str } from '../config/spec.js';
import { CredproxyError } from '../errors.js';
import { oauthClientSpec } from '../oauth/client-config.js';
import { freshConnection } from '../oauth/refresh.js';
import type { Connection } from '../store/types.js';
import { checkValue, traits } from './fields.js';
import { defineScheme, type AcceptedCredentials, type AuthScheme, type CredentialRequest } from './types.js';

const spec = obj(
  {
    ...common,
    ...oauthClientSpec,
    authorize_url: templatedUrl(),
    pkce: bool(),
    authorization_params: stringMap,
    issuer: str(),
    allowed_scopes: scopes,
    required_scopes: scopes,
  },
  ['authorize_url', 'token_url', 'client_id'],
);
type OAuth2Config = SchemeConfig<typeof spec>;

/**
 * OAuth 2.0 authorization-code connections: the connection holds a token set, obtained by
 * the connect flow or migrated in through the admin API. Tokens are refreshed before use
 * when they are about to expire, and after the upstream refused them (src/oauth/refresh.ts).
 */
export class OAuth2Scheme implements AuthScheme {
  readonly type = 'oauth2';
  readonly config: OAuth2Config;

  constructor(definition: AuthDefinition<OAuth2Config>) {
    this.config = definition.config;
  }

  accept(input: Record<string, unknown>, now: number): AcceptedCredentials {
    const { access_token, refresh_token, expires_at, expires_in, scope, token_type: _t, ...rest } = input;
    const unknown = Object.keys(rest);
    if (unknown.length > 0) {
      throw new CredproxyError('bad_request', `credentials: unknown field ${unknown.join(', ')}; expected access_token, refresh_token, expires_at or expires_in, scope`);
    }
    const credentials: Record<string, string> = { access_token: checkValue('access_token', access_token) };
    if (refresh_token !== undefined && refresh_token !== null) credentials.refresh_token = checkValue('refresh_token', refresh_token);
    const accepted: AcceptedCredentials = { credentials };
    if (expires_at !== undefined && expires_in !== undefined) {
      throw new CredproxyError('bad_request', 'credentials: give expires_at or expires_in, not both');
    }
    if (expires_in !== undefined) {
      if (typeof expires_in !== 'number' || !(expires_in > 0)) throw new CredproxyError('bad_request', 'credentials.expires_in must be a positive number of seconds');
      accepted.expires_at = now + expires_in * 1000;
    } else if (expires_at !== undefined) {
      const t = typeof expires_at === 'number' ? expires_at * 1000 : typeof expires_at === 'string' ? Date.parse(expires_at) : NaN;
      if (!Number.isFinite(t)) throw new CredproxyError('bad_request', 'credentials.expires_at must be an ISO 8601 time or unix seconds');
      accepted.expires_at = t;
    }
    if (scope !== undefined) {
      if (typeof scope === 'string') accepted.scopes = scope.split(/[\s,]+/).filter(Boolean);
      else if (Array.isArray(scope) && scope.every((s) => typeof s === 'string')) accepted.scopes = scope as string[];
      else throw new CredproxyError('bad_request', 'credentials.scope must be a string or a list of strings');
    }
    return accepted;
  }

  refreshable(connection: Connection | undefined): boolean {
    return connection?.credentials.refresh_token !== undefined;
  }

  /** The stored token without a promise while it is fresh; a refresh (or waiting for one) otherwise. */
  values(req: CredentialRequest): Record<string, string> | Promise<Record<string, string>> {
    if (!req.connection || !req.ctx) return req.connection?.credentials ?? {};
    const conn = freshConnection(req.ctx, req.integration, this.config, req.connection, req.stale);
    return conn instanceof Promise ? conn.then((c) => c.credentials) : conn.credentials;
  }
}

export const oauth2 = defineScheme<typeof spec>({
  type: 'oauth2',
  spec,
  describe: () => ({
    traits: traits({
      fields: [
        { name: 'access_token', secret: true, optional: false },
        { name: 'refresh_token', secret: true, optional: true },
      ],
      defaultInject: { headers: { Authorization: 'Bearer {{access_token}}' } },
      connectable: 'oauth2',
      hostUrlKeys: ['authorize_url', 'token_url'],
      paramUrlKeys: ['authorize_url', 'token_url'],
    }),
  }),
  create: (definition) => new OAuth2Scheme(definition),
});
