import type { IncomingMessage, ServerResponse } from 'node:http';
import { CONTROL } from '../auth/fields.js';
import type { LiveIntegration } from '../auth/scheme-set.js';
import type { CredentialRequest, ResolvedScheme } from '../auth/types.js';
import { HOST_LABEL, hostParamNames } from '../config/host-template.js';
import type { IntegrationConfig } from '../config/types.js';
import { CredproxyError, sendError } from '../errors.js';
import { storeCall } from '../store/failure.js';
import { checkEntityId } from '../proxy/identify.js';
import type { Runtime } from '../runtime.js';
import { checkLabel, labelled } from '../store/label.js';
import type { Connection } from '../store/types.js';
import { readJson, sendJson } from './http.js';
import { PutConnectionBody } from './shapes.js';
import { verifyConnection, type Verification } from './verify.js';
import { connectionView } from './views.js';

export function integrationOf(rt: Runtime, name: string): LiveIntegration {
  const i = rt.current.integrations.get(name);
  if (!i) throw new CredproxyError('not_found', `no integration named "${name}"`);
  return i;
}

/**
 * `?label=work` on a connection path addresses that labelled connection; without it, the
 * default one (so the paths of DESIGN.md mean exactly what they meant before labels).
 */
export function labelOf(req: IncomingMessage): string | undefined {
  const values = new URL(req.url ?? '/', 'http://credproxy.invalid').searchParams.getAll('label');
  if (values.length === 0) return undefined;
  if (values.length > 1) throw new CredproxyError('bad_request', 'the label query parameter is given more than once');
  return checkLabel(values[0]!, 'the label query parameter');
}


/**
 * Declared params only; defaults filled; each value checked against its pattern. A param that
 * names a host (in `hosts`, or in the authority of authorize_url/token_url) must be exactly
 * one DNS label, whatever its pattern allows: no value may point a credential at another host.
 */
export function acceptParams(integration: IntegrationConfig, input: unknown): Record<string, string> {
  if (input !== undefined && (input === null || typeof input !== 'object' || Array.isArray(input))) {
    throw new CredproxyError('bad_request', 'params must be an object');
  }
  const given = (input ?? {}) as Record<string, unknown>;
  const declared = new Map(integration.params.map((p) => [p.name, p]));
  const unknown = Object.keys(given).filter((k) => !declared.has(k));
  if (unknown.length > 0) {
    throw new CredproxyError('bad_request', `params: unknown ${unknown.join(', ')}; "${integration.name}" declares ${[...declared.keys()].join(', ') || 'none'}`);
  }
  const out: Record<string, string> = {};
  const inHost = hostParamNames(integration.hosts, integration.schemes);
  for (const p of integration.params) {
    const v = given[p.name] ?? p.default;
    if (v === undefined) throw new CredproxyError('bad_request', `params.${p.name} is required`);
    if (typeof v !== 'string' || v === '' || CONTROL.test(v)) {
      throw new CredproxyError('bad_request', `params.${p.name} must be a non-empty string without control characters`);
    }
    if (p.pattern && !new RegExp(p.pattern).test(v)) {
      throw new CredproxyError('bad_request', `params.${p.name} does not match the pattern ${p.pattern}`);
    }
    if (inHost.has(p.name) && !HOST_LABEL.test(v)) {
      throw new CredproxyError(
        'bad_request',
        `params.${p.name} names a host, so it must be one DNS label: lower-case letters, digits and - (no dot, slash, colon, @, upper case, or leading/trailing -)`,
      );
    }
    out[p.name] = v;
  }
  return out;
}

/** What an HTTP header can carry (RFC 9110 field-value: visible ASCII, space, tab, obs-text), as undici enforces it. */
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * Renders the headers this connection would inject and refuses values no HTTP header can
 * carry: stored, they would make every request fail later with a misleading 502.
 */
async function checkHeaderValues(resolved: ResolvedScheme, req: CredentialRequest): Promise<void> {
  // Only the stored values themselves: asking the scheme for its values could call a token
  // endpoint (client credentials, exchanges) from inside an admin PUT. Computed values such
  // as basic_auth are left out (rendering skips them), and they are base64 anyway.
  const values = { ...req.connection?.credentials, ...req.connection?.params, entity: req.entity };
  for (const h of resolved.inject.headers) {
    let value: string;
    try {
      value = h.value.render(values);
    } catch {
      continue; // an optional field left out: answered 424 at request time, saying which
    }
    if (!HEADER_VALUE.test(value)) {
      throw new CredproxyError('bad_request', `credentials: the ${h.name} header built from them would hold characters an HTTP header cannot carry (only Latin-1 is allowed)`);
    }
  }
}

/** The integration's scheme of that type (default: its first), or a 400 naming the ones it has. */
export function schemeNamed(integration: LiveIntegration, schemeName: string | undefined): ResolvedScheme {
  const resolved = schemeName === undefined ? integration.live[0] : integration.live.find((s) => s.definition.type === schemeName);
  if (!resolved) {
    throw new CredproxyError('bad_request', `integration "${integration.name}" has no scheme "${schemeName}"; it offers ${integration.schemes.map((s) => s.type).join(', ')}`);
  }
  return resolved;
}

/** A connection checked as every write checks it, not stored yet: refused when `verification.refused`. */
export interface PreparedConnection {
  connection: Connection;
  existing?: Connection;
  verification?: Verification;
}

/**
 * What the admin PUT and the connect page's form share: the scheme accepts the fields, the
 * params are checked, the header values must fit a header, and the integration's `verify`
 * runs before anything is stored. Throws 400 for a bad input; a refusal by the upstream is
 * in `verification` for the caller to answer in its own way.
 */
export async function prepareConnection(
  rt: Runtime,
  integration: LiveIntegration,
  w: { entity: string; label?: string; scheme?: string; params: unknown; credentials: Record<string, unknown> },
): Promise<PreparedConnection> {
  const resolved = schemeNamed(integration, w.scheme);
  const now = Date.now();
  const accepted = resolved.scheme.accept(w.credentials, now);
  const acceptedParams = acceptParams(integration, w.params);
  await resolved.scheme.verify?.(accepted);
  const existing = await storeCall('connection.get', () => rt.store.get(w.entity, integration.name, { label: w.label }));
  const connection: Connection = {
    entity: w.entity,
    integration: integration.name,
    ...(w.label === undefined ? {} : { label: w.label }),
    scheme: resolved.definition.type,
    params: acceptedParams,
    status: 'active',
    credentials: accepted.credentials,
    expires_at: accepted.expires_at,
    scopes: accepted.scopes,
    created_at: existing?.created_at ?? now,
    updated_at: now,
  };
  await checkHeaderValues(resolved, { entity: w.entity, integration, connection });
  // Before storing: credentials the upstream refuses never replace a connection that works.
  const verification = await verifyConnection(rt, integration, connection);
  return { connection, existing, verification };
}

/** Stores a prepared (and not refused) connection, with its log line and event. */
export async function saveConnection(rt: Runtime, p: PreparedConnection, via: 'api' | 'connect page'): Promise<void> {
  const c = p.connection;
  await storeCall('connection.put', () => rt.store.put(c));
  rt.log.info({ entity: c.entity, integration: c.integration, label: c.label, scheme: c.scheme, via }, 'connection stored');
  // A connection that was not active becomes so: the store announces that (connection.active).
  // Credentials replaced on an active connection change no status; say it here, so every
  // write is one connection.active event.
  if (p.existing?.status === 'active') rt.events.emit({ type: 'connection.active', entity: c.entity, integration: c.integration, label: c.label, status: 'active' });
}

export async function putConnection(rt: Runtime, req: IncomingMessage, res: ServerResponse, entity: string, name: string) {
  checkEntityId(entity, 'the entity in the path');
  const label = labelOf(req);
  const integration = integrationOf(rt, name);
  const body = await readJson(req, rt.current.config.settings.limits.admin_body_bytes);
  // The documented shape first (api/shapes.ts, the same one the OpenAPI document shows), then what the integration asks.
  const { scheme, params, credentials } = PutConnectionBody.check(body, '');
  const prepared = await prepareConnection(rt, integration, { entity, label, scheme, params, credentials });
  const { connection, verification } = prepared;
  if (verification?.refused) return refuseUnverified(rt, res, connection, verification);
  await saveConnection(rt, prepared, 'api');
  sendJson(res, 200, verification ? { ...connectionView(connection), verification: verificationView(verification) } : connectionView(connection));
}

const verificationView = (v: Verification) => ({ ok: v.ok, status: v.status, message: v.message });

/**
 * 400 bad_request, as every refused PUT, with the verification beside the error so a script
 * can read the upstream's status without parsing the message.
 */
function refuseUnverified(rt: Runtime, res: ServerResponse, c: Connection, v: Verification): void {
  rt.log.warn({ entity: c.entity, integration: c.integration, label: c.label, status: v.status }, 'connection not stored: verification failed');
  const err = new CredproxyError('bad_request', `verification failed: ${v.message}; nothing was stored`, { 'cache-control': 'no-store' });
  sendError(res, err, { verification: verificationView(v) });
}

export async function getConnection(rt: Runtime, req: IncomingMessage, res: ServerResponse, entity: string, name: string) {
  checkEntityId(entity, 'the entity in the path');
  const label = labelOf(req);
  integrationOf(rt, name);
  const c = await storeCall('connection.get', () => rt.store.get(entity, name, { label }));
  if (!c) throw new CredproxyError('not_found', `entity "${entity}" has no connection${labelled(label)} for "${name}"`);
  sendJson(res, 200, connectionView(c));
}

export async function listConnections(rt: Runtime, res: ServerResponse, entity: string) {
  checkEntityId(entity, 'the entity in the path');
  const names = [...rt.current.config.integrations.keys()];
  const list = await storeCall('connection.list', () => rt.store.list(entity, names));
  sendJson(res, 200, { entity, connections: list.map(connectionView) });
}

export async function deleteConnection(rt: Runtime, req: IncomingMessage, res: ServerResponse, entity: string, name: string) {
  checkEntityId(entity, 'the entity in the path');
  const label = labelOf(req);
  await storeCall('connection.delete', () => rt.store.delete(entity, name, label));
  rt.log.info({ entity, integration: name, label }, 'connection deleted');
  res.writeHead(204).end();
}
