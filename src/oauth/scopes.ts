import type { AuthConfig } from '../config/types.js';
import { CredproxyError } from '../errors.js';
import type { Connection } from '../store/types.js';

/** The scope keys an oauth2 `auth` entry may carry (all lists of strings). */
interface ScopeConfig {
  scopes?: string[];
  allowed_scopes?: string[];
  required_scopes?: string[];
}

const scopeConfig = (c: AuthConfig) => c as AuthConfig & ScopeConfig;

/** One scope token (RFC 6749 §3.3): printable ASCII except space, `"` and `\`. */
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/;

/**
 * The scopes a connect link asks for: the integration's `scopes` unless the request names
 * others. When the integration lists `allowed_scopes`, only those (and its default scopes)
 * may be asked for; `required_scopes` may never be left out.
 */
export function requestedScopes(config: AuthConfig, input: unknown): string[] | undefined {
  const c = scopeConfig(config);
  if (input === undefined || input === null) return c.scopes;
  if (!Array.isArray(input) || input.length === 0 || !input.every((s) => typeof s === 'string' && SCOPE_TOKEN.test(s))) {
    throw new CredproxyError('bad_request', 'scopes must be a non-empty list of scope names (no spaces or control characters)');
  }
  const asked = [...new Set(input as string[])];
  if (c.allowed_scopes?.length) {
    const allowed = new Set([...c.allowed_scopes, ...(c.scopes ?? [])]);
    const refused = asked.filter((s) => !allowed.has(s));
    if (refused.length > 0) {
      throw new CredproxyError('bad_request', `scopes: ${refused.join(', ')} not allowed; this integration allows ${[...allowed].join(', ')}`);
    }
  }
  const left = (c.required_scopes ?? []).filter((s) => !asked.includes(s));
  if (left.length > 0) throw new CredproxyError('bad_request', `scopes: leaves out ${left.join(', ')}, which the integration requires`);
  return asked;
}

/**
 * `required_scopes`: a connection whose granted scopes lack one is answered 424 before
 * anything is sent, saying which scope and how to get it. A connection that records no
 * scopes at all (a token stored without `scope`) is let through: the upstream decides.
 */
export function checkRequiredScopes(config: AuthConfig, connection: Connection | undefined): void {
  const required = scopeConfig(config).required_scopes;
  if (!required?.length || !connection?.scopes) return;
  const granted = new Set(connection.scopes);
  const missing = required.filter((s) => !granted.has(s));
  if (missing.length === 0) return;
  const { entity, integration } = connection;
  throw new CredproxyError(
    'connection_missing',
    `the connection of entity "${entity}" to "${integration}" lacks the required scope${missing.length > 1 ? 's' : ''} ${missing.join(', ')} ` +
      `(granted: ${connection.scopes.join(' ') || 'none'}); connect again through POST /api/entities/${encodeURIComponent(entity)}/connections/${integration}/connect and grant ${missing.length > 1 ? 'them' : 'it'}`,
  );
}
