import { MissingValueError } from '../config/template.js';
import type { Dispatcher } from 'undici';
import type { LiveIntegration } from '../auth/scheme-set.js';
import type { CredentialRequest, ResolvedScheme, SchemeContext } from '../auth/types.js';
import type { HostPattern } from '../config/hosts.js';
import { renderHost } from '../config/host-template.js';
import type { IntegrationConfig } from '../config/types.js';
import { CredproxyError } from '../errors.js';
import { storeCall } from '../store/failure.js';
import type { Connection, ConnectionStore } from '../store/types.js';
import { checkRequiredScopes } from '../oauth/scopes.js';
import { labelled } from '../store/label.js';
import { bindSigner } from './sign.js';
import type { Injection } from './types.js';

/** Which of the integration's schemes a connection uses (the first when it has none). */
export function schemeOf(integration: LiveIntegration, connection: Connection | undefined): ResolvedScheme | undefined {
  if (!connection) return integration.live[0];
  return integration.live.find((s) => s.definition.type === connection.scheme);
}

async function loadConnection(store: ConnectionStore, entity: string, integration: string, label: string | undefined): Promise<Connection | undefined> {
  return storeCall('connection.get', () => store.get(entity, integration, { label }), 'the store does not answer; the request was not forwarded');
}

/** The host a request named through a host template: the params it was built from, and the template. */
export interface TemplateHost {
  pattern: HostPattern;
  hostname: string;
}

/**
 * A credential for a templated host goes only where the connection's own params point: the
 * template filled with them must give exactly the requested host (alice's token for
 * acme.zendesk.com never reaches other.zendesk.com).
 */
function checkHost(entity: string, integration: IntegrationConfig, connection: Connection | undefined, host: TemplateHost, label: string | undefined): void {
  const mine = connection ? renderHost(host.pattern.host, connection.params) : undefined;
  if (mine === host.hostname) return;
  const has = connection
    ? mine === undefined
      ? 'whose params do not fill this host template'
      : `for ${mine}`
    : 'none';
  throw new CredproxyError(
    'connection_missing',
    `entity "${entity}" has no connection${labelled(label)} to "${integration.name}" for host ${host.hostname} (its connection: ${has}); store one with params that name this host`,
  );
}

/**
 * Loads the entity's connection (the labelled one when `label` is given) and renders what
 * the scheme injects. Every way this can fail ends in a documented error, never in a request
 * forwarded without its credential. A connection in the store's cache and a scheme whose
 * values need no waiting give the answer without a promise (the hot path); otherwise a
 * promise. Failures are thrown or rejected accordingly.
 */
export function resolveCredential(
  store: ConnectionStore,
  integration: LiveIntegration,
  entity: string,
  opts: { ctx?: SchemeContext; stale?: string; host?: TemplateHost; label?: string } = {},
): Injection | Promise<Injection> {
  const first = integration.schemes[0]!.traits;
  const { label } = opts;
  // A label asks for one particular stored connection, even where the integration could do without.
  if (first.needsConnection || integration.schemes.length > 1 || opts.host || label !== undefined) {
    const cached = store.peek?.(entity, integration.name, label);
    if (cached) return withConnection(integration, entity, cached, opts);
    return loadConnection(store, entity, integration.name, label).then((connection) => withConnection(integration, entity, connection, opts));
  }
  return withConnection(integration, entity, undefined, opts);
}

/** The checks on a loaded connection (or its absence), then what its scheme injects. */
function withConnection(
  integration: LiveIntegration,
  entity: string,
  connection: Connection | undefined,
  opts: { ctx?: SchemeContext; stale?: string; host?: TemplateHost; label?: string },
): Injection | Promise<Injection> {
  const first = integration.schemes[0]!.traits;
  const { label } = opts;
  const which = labelled(label);
  if (!connection && (first.needsConnection || label !== undefined)) {
    throw new CredproxyError(
      'connection_missing',
      label === undefined
        ? `entity "${entity}" has no connection for integration "${integration.name}"`
        : `entity "${entity}" has no connection labelled "${label}" for integration "${integration.name}"; store one with ?label=${label}, or leave out the X-Connection-Label header for the default connection`,
    );
  }
  if (connection) {
    if (connection.status === 'expired') {
      throw new CredproxyError('connection_expired', `the connection${which} of entity "${entity}" to "${integration.name}" expired; the user must connect again`);
    }
    if (connection.unreadable) {
      throw new CredproxyError('connection_missing', `the connection${which} of entity "${entity}" to "${integration.name}" cannot be used: ${connection.reason ?? 'its credentials cannot be opened'}`);
    }
    if (connection.status !== 'active') {
      const why = connection.status === 'initiated' ? 'the connect flow was started but not finished' : `the connect flow failed${connection.reason ? ` (${connection.reason})` : ''}`;
      throw new CredproxyError('connection_missing', `entity "${entity}" has no usable connection${which} for integration "${integration.name}": ${why}`);
    }
  }
  if (opts.host) checkHost(entity, integration, connection, opts.host, label);
  return injectionFor(integration, entity, connection, opts);
}

/** What a scheme rendered for a connection, and from which values. */
interface Rendered {
  resolved: ResolvedScheme;
  entity: string;
  schemeValues: Readonly<Record<string, string>>;
  headers: Injection['headers'];
  query: Injection['query'];
}

/**
 * The last rendering per stored connection object. The store hands out the same object
 * until the connection changes (its cache, keyv-store.ts), and a changed connection is a new
 * object, so the object's identity stands for its params and credentials; the scheme's
 * values (a token that may have been refreshed or minted) are compared each time. A hit
 * saves the template rendering and its arrays on every request. The arrays are shared
 * between requests: nothing may change them.
 */
const renderings = new WeakMap<Connection, Rendered>();

function sameValues(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  if (a === b) return true;
  let n = 0;
  for (const k in b) {
    if (a[k] !== b[k]) return false;
    n++;
  }
  for (const _ in a) n--;
  return n === 0;
}

function rendered(resolved: ResolvedScheme, entity: string, connection: Connection | undefined, schemeValues: Readonly<Record<string, string>>): Rendered {
  const hit = connection ? renderings.get(connection) : undefined;
  if (hit && hit.resolved === resolved && hit.entity === entity && sameValues(hit.schemeValues, schemeValues)) return hit;
  const values = { ...schemeValues, ...connection?.params, entity };
  const out: Rendered = {
    resolved,
    entity,
    schemeValues: { ...schemeValues },
    headers: resolved.inject.headers.map((h) => [h.name, h.lower, h.value.render(values)]),
    query: resolved.inject.query.map((q) => [q.name, q.value.render(values)]),
  };
  if (connection) renderings.set(connection, out);
  return out;
}

/**
 * What the connection's scheme injects for one request: the half of resolveCredential after
 * the connection is loaded and checked. The admin API's verification (src/api/verify.ts)
 * runs it for a connection that is not stored yet.
 */
export function injectionFor(
  integration: LiveIntegration,
  entity: string,
  connection: Connection | undefined,
  opts: { ctx?: SchemeContext; stale?: string; dispatcher?: Dispatcher } = {},
): Injection | Promise<Injection> {
  const resolved = schemeOf(integration, connection);
  if (!resolved) {
    throw new CredproxyError('connection_missing', `the connection of entity "${entity}" uses scheme "${connection?.scheme}", which integration "${integration.name}" no longer offers`);
  }
  checkRequiredScopes(resolved.definition.config, connection);
  const cred = { entity, integration, connection, ctx: opts.ctx, stale: opts.stale, dispatcher: opts.dispatcher ?? opts.ctx?.dispatcher };
  // A minted token (jwt, jwt_bearer) the upstream refused is dropped before asking again.
  if (opts.stale !== undefined) resolved.scheme.forget?.(cred);
  const values = resolved.scheme.values(cred);
  // Static schemes (api_key, bearer, basic) and cached tokens answer without a promise.
  if (values instanceof Promise) return values.then((v) => injectionFrom(integration, entity, connection, resolved, cred, v));
  return injectionFrom(integration, entity, connection, resolved, cred, values);
}

function injectionFrom(
  integration: LiveIntegration,
  entity: string,
  connection: Connection | undefined,
  resolved: ResolvedScheme,
  cred: CredentialRequest,
  schemeValues: Readonly<Record<string, string>>,
): Injection {
  try {
    const { headers, query } = rendered(resolved, entity, connection, schemeValues);
    return {
      headers,
      query,
      connection,
      token: schemeValues.access_token ?? schemeValues.jwt,
      refreshable: resolved.scheme.refreshable?.(connection) ?? resolved.scheme.forget !== undefined,
      sign: bindSigner(resolved.scheme, cred),
      forget: resolved.scheme.forget ? () => resolved.scheme.forget!(cred) : undefined,
    };
  } catch (err) {
    if (err instanceof MissingValueError) {
      throw new CredproxyError('connection_missing', `the connection of entity "${entity}" to "${integration.name}" lacks ${err.missing}`);
    }
    throw err;
  }
}
