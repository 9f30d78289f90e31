import type { AuthDefinition, FieldInfo } from '../config/scheme-definition.js';
import type { IntegrationConfig } from '../config/types.js';
import { CredproxyError } from '../errors.js';

/**
 * The ways a connect page can connect an integration: a scheme that connects through the
 * provider (`connectable: 'oauth2'`), or one whose connection supplies fields the user types
 * (API key, token, username and password, …). Schemes that need no stored connection, or
 * whose fields are empty, are not offered: there is nothing for a user to do.
 */
export interface Way {
  type: string;
  kind: 'oauth2' | 'fields';
  fields: readonly FieldInfo[];
  definition: AuthDefinition;
}

/**
 * In the order the page offers them: signing in at the provider first (nothing to copy, and
 * what a link meant before the page had forms), then the field schemes in the YAML's order.
 * The first is the one checked, and the one a form posted without a choice takes.
 */
export function waysOf(integration: IntegrationConfig): Way[] {
  const oauth: Way[] = [];
  const fields: Way[] = [];
  for (const d of integration.schemes) {
    if (d.traits.connectable === 'oauth2') oauth.push({ type: d.type, kind: 'oauth2', fields: [], definition: d });
    else if (d.traits.needsConnection && d.traits.fields.length > 0) fields.push({ type: d.type, kind: 'fields', fields: d.traits.fields, definition: d });
  }
  return [...oauth, ...fields];
}

/** What a link may offer: the one scheme it names, or every way; a 400 when there is none. */
export function offeredWays(integration: IntegrationConfig, scheme: string | undefined): Way[] {
  const ways = waysOf(integration);
  if (scheme !== undefined) {
    const way = ways.find((w) => w.type === scheme);
    if (!way) {
      const has = integration.schemes.some((d) => d.type === scheme);
      throw new CredproxyError(
        'bad_request',
        has
          ? `scheme "${scheme}" of "${integration.name}" cannot be connected through a connect page (it needs no stored connection or has no fields)`
          : `integration "${integration.name}" has no scheme "${scheme}"; it offers ${integration.schemes.map((d) => d.type).join(', ')}`,
      );
    }
    return [way];
  }
  if (ways.length === 0) throw new CredproxyError('bad_request', `integration "${integration.name}" has no scheme a user can connect through a connect page`);
  return ways;
}

/** How the page names a way, in words a user knows. */
export function wayTitle(way: Way, provider?: string): string {
  if (way.kind === 'oauth2') return provider ? `Sign in at ${provider}` : 'Sign in with your account';
  const names = way.fields.filter((f) => !f.optional).map((f) => f.name);
  if (way.type === 'basic') return 'Username and password';
  if (way.type === 'bearer') return 'Access token';
  if (way.type === 'api_key') return names.length === 1 ? 'API key' : `API key (${names.join(', ')})`;
  return `${way.type} (${names.join(', ')})`;
}
