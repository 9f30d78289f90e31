import type { IncomingMessage, ServerResponse } from 'node:http';
import * as oauth from 'oauth4webapi';
import type { IntegrationConfig } from '../config/types.js';
import { CredproxyError, isCredproxyError } from '../errors.js';
import type { Runtime } from '../runtime.js';
import type { Connection } from '../store/types.js';
import { authorizationServer, requestToken, TokenEndpointError } from './token-client.js';
import { withParams, type OAuthAuthConfig } from './client-config.js';
import { takeLink } from './links.js';
import { sendFlowError, sendPage } from './pages.js';
import { saveState, takeState, type FlowState } from './state.js';
import { applyTokenSet } from './token-set.js';

/** A code exchange gets as long as a token refresh. */
const EXCHANGE_TIMEOUT_MS = 30_000;

/** The integration's oauth2 scheme config, or a 400 when it has none. */
export function oauth2ConfigOf(integration: IntegrationConfig | undefined, name: string): OAuthAuthConfig {
  if (!integration) throw new CredproxyError('not_found', `no integration named "${name}"`);
  const s = integration.schemes.find((r) => r.scheme.type === 'oauth2');
  if (!s) throw new CredproxyError('bad_request', `integration "${name}" has no oauth2 scheme to connect with`);
  return s.scheme.config as OAuthAuthConfig;
}

export const callbackUrl = (rt: Runtime) => `${rt.current.config.settings.public_url}/connect/callback`;

async function storeCall<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch {
    throw new CredproxyError('store_unavailable', 'the store does not answer');
  }
}

/**
 * Runs a browser-facing handler: its errors become a page for browsers, JSON for programs.
 * HEAD (link checkers, previews) answers without consuming the single-use link or state.
 */
function browserFacing(fn: (rt: Runtime, req: IncomingMessage, res: ServerResponse, params: string[]) => Promise<void>) {
  return async (rt: Runtime, req: IncomingMessage, res: ServerResponse, params: string[]) => {
    if (req.method === 'HEAD') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end();
      return;
    }
    try {
      await fn(rt, req, res, params);
    } catch (err) {
      if (!isCredproxyError(err)) throw err;
      sendFlowError(req, res, err);
    }
  };
}

/** GET /connect/{integration}?token=…: the link is good once; off to the provider with state and PKCE. */
export const startFlow = browserFacing(async (rt, req, res, [name]) => {
  const url = new URL(req.url ?? '/', 'http://credproxy.invalid');
  const token = url.searchParams.get('token');
  if (!token) throw new CredproxyError('bad_request', 'the connect link has no token');
  const config = oauth2ConfigOf(rt.current.config.integrations.get(name!), name!);
  const link = await takeLink(rt.store.kv, rt.adminToken, token, name!);
  const c = withParams(config, link.params);
  const scopes = link.scopes ?? c.scopes;
  const verifier = c.pkce === false ? undefined : oauth.generateRandomCodeVerifier();
  const state = await saveState(rt.store.kv, { entity: link.entity, integration: name!, label: link.label, params: link.params, verifier, redirect_to: link.redirect_to, scopes });
  const authorize = new URL(c.authorize_url!);
  const q = authorize.searchParams;
  // Extra parameters first, so they can never replace the ones the flow's security rests on.
  for (const [k, v] of Object.entries(c.authorization_params ?? {})) q.set(k, v);
  q.set('response_type', 'code');
  q.set('client_id', c.client_id ?? '');
  q.set('redirect_uri', callbackUrl(rt));
  if (scopes?.length) q.set('scope', scopes.join(c.scope_separator ?? ' '));
  q.set('state', state);
  if (verifier) {
    q.set('code_challenge', await oauth.calculatePKCECodeChallenge(verifier));
    q.set('code_challenge_method', 'S256');
  }
  rt.log.info({ entity: link.entity, integration: name, label: link.label, pkce: verifier !== undefined }, 'connect flow started');
  res.writeHead(302, { location: authorize.href, 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' }).end();
});

/** Provider text that ends up in the store and on a page: one line, bounded. */
const tidy = (s: string) => s.replace(/[\u0000-\u001f\u007f]+/g, ' ').slice(0, 300);

/**
 * GET /connect/callback: the state is taken first (a bad one stores nothing), then either
 * the provider's error marks the connection failed, or the code is exchanged and the
 * connection becomes active.
 */
export const finishFlow = browserFacing(async (rt, req, res) => {
  const url = new URL(req.url ?? '/', 'http://credproxy.invalid');
  const flow = await takeState(rt.store.kv, url.searchParams.get('state'));
  const integration = rt.current.config.integrations.get(flow.integration);
  const config = withParams(oauth2ConfigOf(integration, flow.integration), flow.params);
  const as = authorizationServer(config, config.authorize_url);
  const callback = new URLSearchParams(url.searchParams);
  // Without a declared issuer there is nothing to hold an `iss` against (RFC 9207 §2.4).
  if (!config.issuer) callback.delete('iss');
  let validated: URLSearchParams;
  try {
    validated = oauth.validateAuthResponse(as, { client_id: config.client_id ?? '' }, callback, url.searchParams.get('state')!);
  } catch (err) {
    const reason =
      err instanceof oauth.AuthorizationResponseError
        ? tidy(`${err.error}${err.error_description ? `: ${err.error_description}` : ''}`)
        : tidy(`invalid callback: ${(err as Error).message}`);
    await fail(rt, flow, reason);
    return sendPage(res, 400, 'Connection not completed', `${integration!.name} did not grant access (${reason}). You can close this page and try again.`);
  }
  if (!validated.get('code')) {
    await fail(rt, flow, 'the callback carries no code');
    return sendPage(res, 400, 'Connection not completed', `${integration!.name} sent no authorization code. You can close this page and try again.`);
  }
  let set;
  try {
    set = await requestToken(
      config,
      { id: config.client_id ?? '', secret: config.client_secret },
      { type: 'authorization_code', callback: validated, redirectUri: callbackUrl(rt), verifier: flow.verifier },
      { dispatcher: rt.agent, timeoutMs: EXCHANGE_TIMEOUT_MS },
    );
  } catch (err) {
    const reason = tidy(err instanceof TokenEndpointError ? `token exchange failed: ${err.oauthError ?? err.message}` : 'token exchange failed');
    await fail(rt, flow, reason);
    return sendPage(res, 502, 'Connection not completed', `${integration!.name}: ${reason}. You can close this page and try again.`);
  }
  const now = Date.now();
  const existing = await storeCall(() => rt.store.get(flow.entity, flow.integration, { label: flow.label }));
  const tokens = applyTokenSet(undefined, set, now);
  const connection: Connection = {
    entity: flow.entity,
    integration: flow.integration,
    ...(flow.label === undefined ? {} : { label: flow.label }),
    scheme: 'oauth2',
    params: flow.params,
    status: 'active',
    ...tokens,
    // A token response without `scope` granted exactly what was asked for (RFC 6749 §5.1).
    scopes: tokens.scopes ?? flow.scopes,
    created_at: existing?.created_at ?? now,
    updated_at: now,
  };
  await storeCall(() => rt.store.put(connection));
  rt.log.info({ entity: flow.entity, integration: flow.integration, label: flow.label }, 'connection active');
  if (flow.redirect_to) {
    res.writeHead(302, { location: flow.redirect_to, 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' }).end();
    return;
  }
  // A user with several accounts should see which one this browser just connected.
  const account = flow.label === undefined ? '' : ` as your "${flow.label}" account`;
  sendPage(res, 200, 'Connected', `${integration!.name} is connected${account}. You can close this page.`);
});

/** Marks the flow's connection failed, unless it is already active (a failed re-connect loses nothing). */
async function fail(rt: Runtime, flow: FlowState, reason: string): Promise<void> {
  const now = Date.now();
  const existing = await storeCall(() => rt.store.get(flow.entity, flow.integration, { label: flow.label }));
  rt.log.warn({ entity: flow.entity, integration: flow.integration, label: flow.label, reason }, 'connect flow failed');
  if (existing?.status === 'active') return;
  await storeCall(() =>
    rt.store.put({
      entity: flow.entity,
      integration: flow.integration,
      ...(flow.label === undefined ? {} : { label: flow.label }),
      scheme: 'oauth2',
      params: flow.params,
      status: 'failed',
      reason,
      credentials: existing?.credentials ?? {},
      created_at: existing?.created_at ?? now,
      updated_at: now,
    }),
  );
}
