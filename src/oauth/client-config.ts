import { scopes, stringMap, templatedUrl } from '../config/schema.js';
import { int, str } from '../config/spec.js';
import { compileTemplate } from '../config/template.js';
import type { AuthConfig } from '../config/types.js';
import type { OAuthClientConfig } from './token-client.js';

/** An oauth2 or oauth2_client_credentials `auth` entry, as the YAML wrote it. */
export type OAuthAuthConfig = AuthConfig &
  OAuthClientConfig & {
    authorize_url?: string;
    pkce?: boolean;
    authorization_params?: Record<string, string>;
    refresh_before?: number;
  };

/** The schema keys of an OAuth client at a token endpoint (oauth2, oauth2_client_credentials). */
export const oauthClientSpec = {
  token_url: templatedUrl(),
  client_id: str(),
  client_secret: str(),
  scopes,
  scope_separator: str(),
  token_request_auth_method: str({ enum: ['client_secret_basic', 'client_secret_post'] }),
  token_params: stringMap,
  token_response: stringMap,
  refresh_before: int(0, 86400),
};

/** Seconds before expiry at which a token is refreshed before use (DESIGN: 60 s unless `refresh_before`). */
export const refreshBeforeMs = (c: OAuthAuthConfig) => (c.refresh_before ?? 60) * 1000;

/**
 * The config with the connection's params filled into templated URLs (`https://{{subdomain}}.zendesk.com/…`).
 * Values go in percent-encoded, so a param can never add a path segment, a query or a host
 * (params in a host are single DNS labels anyway: src/config/host-template.ts).
 */
export function withParams(c: OAuthAuthConfig, params: Record<string, string>): OAuthAuthConfig {
  const encoded = Object.fromEntries(Object.entries(params).map(([k, v]) => [k, encodeURIComponent(v)]));
  const fill = (s: string | undefined) => (s === undefined ? undefined : compileTemplate(s).render(encoded));
  return { ...c, token_url: fill(c.token_url)!, authorize_url: fill(c.authorize_url) };
}
