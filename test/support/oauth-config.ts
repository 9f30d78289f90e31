import type { OAuthServer } from './oauth-server.js';

/** An oauth2 integration owning the test upstream, with its client at the test authorization server. */
export function oauthIntegration(as: OAuthServer, upstreamPort: number, extra = ''): string {
  return [
    `hosts: ["127.0.0.1:${upstreamPort}"]`,
    'upstream: http',
    'auth:',
    '  type: oauth2',
    `  authorize_url: ${as.origin}/authorize`,
    `  token_url: ${as.origin}/token`,
    `  client_id: ${as.clientId}`,
    `  client_secret: ${as.clientSecret}`,
    extra,
  ].join('\n');
}
