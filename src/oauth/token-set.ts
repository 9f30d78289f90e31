import type { Connection } from '../store/types.js';
import type { TokenSet } from './token-client.js';

/**
 * What a token response changes on a connection. A response without a refresh token keeps
 * the one the connection has (most providers rotate only sometimes); one without
 * `expires_in` leaves no expiry, so only a `refresh_on` status triggers a refresh.
 */
export function applyTokenSet(
  previous: Pick<Connection, 'credentials' | 'scopes'> | undefined,
  set: TokenSet,
  now: number,
): Pick<Connection, 'credentials' | 'expires_at' | 'scopes'> {
  const credentials: Record<string, string> = { ...previous?.credentials, access_token: set.access_token };
  const refresh = set.refresh_token ?? previous?.credentials.refresh_token;
  if (refresh !== undefined) credentials.refresh_token = refresh;
  else delete credentials.refresh_token;
  return {
    credentials,
    expires_at: set.expires_in === undefined ? undefined : now + set.expires_in * 1000,
    scopes: set.scope === undefined ? previous?.scopes : set.scope.split(/[\s,]+/).filter(Boolean),
  };
}
