import type { IncomingMessage, ServerResponse } from 'node:http';
import { CredproxyError } from '../errors.js';
import { storeUnavailable } from '../store/failure.js';
import { oauth2ConfigOf } from '../oauth/connect.js';
import { createLink } from '../oauth/links.js';
import { requestedScopes } from '../oauth/scopes.js';
import { checkEntityId } from '../proxy/identify.js';
import type { Runtime } from '../runtime.js';
import { acceptParams, labelOf } from './connections.js';
import { readJson, sendJson } from './http.js';
import { ConnectLinkBody } from './shapes.js';

/** `redirect_to` must fall under an entry of `connect.allowed_redirects` (same origin, path below): no open redirect. */
export function allowedRedirect(target: unknown, allowed: readonly string[]): string | undefined {
  if (target === undefined || target === null) return undefined;
  if (typeof target !== 'string') throw new CredproxyError('bad_request', 'redirect_to must be a string');
  let u: URL;
  try {
    u = new URL(target);
  } catch {
    throw new CredproxyError('bad_request', 'redirect_to is not a URL');
  }
  const ok =
    (u.protocol === 'https:' || u.protocol === 'http:') &&
    u.username === '' &&
    u.password === '' &&
    allowed.some((a) => {
      const base = new URL(a);
      const prefix = base.pathname.endsWith('/') ? base.pathname : `${base.pathname}/`;
      return u.origin === base.origin && (u.pathname === base.pathname || u.pathname.startsWith(prefix));
    });
  if (!ok) throw new CredproxyError('bad_request', 'redirect_to is not on connect.allowed_redirects');
  return u.href;
}

/**
 * POST /api/entities/{entity}/connections/{integration}/connect[?label=L]: a single-use link (10
 * minutes) that starts the OAuth flow for the default or the labelled connection. The connection becomes `initiated`, unless it is
 * active: a re-connect keeps the working tokens until the new ones arrive.
 */
export async function createConnectLink(rt: Runtime, req: IncomingMessage, res: ServerResponse, entity: string, name: string) {
  checkEntityId(entity, 'the entity in the path');
  const label = labelOf(req);
  const body = await readJson(req, rt.current.config.settings.limits.admin_body_bytes);
  sendJson(res, 200, await makeConnectLink(rt, entity, name, label, body));
}

/** The link itself, for the API and the dashboard: the body is the API's (redirect_to, params, scopes). */
export async function makeConnectLink(rt: Runtime, entity: string, name: string, label: string | undefined, body: Record<string, unknown>) {
  const integration = rt.current.config.integrations.get(name);
  const config = oauth2ConfigOf(integration, name);
  const { redirect_to, params, scopes } = ConnectLinkBody.check(body, '');
  const asked = scopes === undefined ? undefined : requestedScopes(config, scopes);
  const redirect = allowedRedirect(redirect_to, rt.current.config.settings.connect.allowed_redirects);
  const accepted = acceptParams(integration!, params);
  const now = Date.now();
  try {
    const existing = await rt.store.get(entity, name, { label });
    if (existing?.status !== 'active') {
      await rt.store.put({
        entity,
        integration: name,
        ...(label === undefined ? {} : { label }),
        scheme: config.type,
        params: accepted,
        status: 'initiated',
        credentials: {},
        created_at: existing?.created_at ?? now,
        updated_at: now,
      });
    }
  } catch (err) {
    throw storeUnavailable(err, 'connection.put');
  }
  const { token, expiresAt } = await createLink(rt.store.kv, rt.adminToken, { entity, integration: name, label, params: accepted, redirect_to: redirect, scopes: asked }, now);
  const connect_url = `${rt.current.config.settings.public_url}/connect/${encodeURIComponent(name)}?token=${token}`;
  rt.log.info({ entity, integration: name, label }, 'connect link created');
  return { connect_url, expires_at: new Date(expiresAt).toISOString() };
}
