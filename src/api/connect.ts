import type { IncomingMessage, ServerResponse } from 'node:http';
import { CredproxyError } from '../errors.js';
import { storeUnavailable } from '../store/failure.js';
import { oauth2ConfigOf } from '../oauth/connect.js';
import { createLink, type LinkRecord } from '../oauth/links.js';
import { offeredWays } from '../oauth/offer.js';
import { checkLabel } from '../store/label.js';
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
 * minutes) to the connect page, where the user connects the default or the labelled connection
 * with any of the integration's schemes (or the one `scheme` names): through the provider for
 * oauth2, with a form for the others. Params given here are fixed; left out, the page asks for
 * them. The connection becomes `initiated`, unless it is active: a re-connect keeps the working
 * credentials until new ones arrive.
 */
export async function createConnectLink(rt: Runtime, req: IncomingMessage, res: ServerResponse, entity: string, name: string) {
  checkEntityId(entity, 'the entity in the path');
  const body = await readJson(req, rt.current.config.settings.limits.admin_body_bytes);
  sendJson(res, 200, await makeConnectLink(rt, entity, name, labelOf(req), body));
}

/**
 * The link itself, for the API and the dashboard. `queryLabel` is the `?label=` of the API
 * (or the dashboard's field); the body is the API's (redirect_to, scheme, label, params, scopes).
 */
export async function makeConnectLink(rt: Runtime, entity: string, name: string, queryLabel: string | undefined, body: Record<string, unknown>) {
  const integration = rt.current.config.integrations.get(name);
  if (!integration) throw new CredproxyError('not_found', `no integration named "${name}"`);
  const { redirect_to, params, scopes, scheme, label: bodyLabel } = ConnectLinkBody.check(body, '');
  const label = bodyLabel === undefined ? queryLabel : checkLabel(bodyLabel, 'label');
  if (queryLabel !== undefined && label !== queryLabel) throw new CredproxyError('bad_request', 'label is given in the body and the query with different values');
  const ways = offeredWays(integration, scheme);
  const oauthWay = ways.find((w) => w.kind === 'oauth2');
  if (scopes !== undefined && !oauthWay) throw new CredproxyError('bad_request', `scopes apply to an oauth2 scheme, and this link offers ${ways.map((w) => w.type).join(', ')}`);
  const asked = scopes === undefined ? undefined : requestedScopes(oauth2ConfigOf(integration, name), scopes);
  const redirect = allowedRedirect(redirect_to, rt.current.config.settings.connect.allowed_redirects);
  const askParams = params === undefined && integration.params.length > 0;
  const accepted = askParams ? {} : acceptParams(integration, params);
  const now = Date.now();
  try {
    const existing = await rt.store.get(entity, name, { label });
    if (existing?.status !== 'active') {
      await rt.store.put({
        entity,
        integration: name,
        ...(label === undefined ? {} : { label }),
        scheme: ways[0]!.type,
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
  const record: LinkRecord = { entity, integration: name, label, params: accepted, redirect_to: redirect, scopes: asked, scheme, ...(askParams ? { ask_params: true } : {}) };
  const { token, expiresAt } = await createLink(rt.store.kv, rt.adminToken, record, now);
  const connect_url = `${rt.current.config.settings.public_url}/connect/${encodeURIComponent(name)}?token=${token}`;
  rt.log.info({ entity, integration: name, label, scheme }, 'connect link created');
  return { connect_url, expires_at: new Date(expiresAt).toISOString() };
}
