import type { IncomingMessage, ServerResponse } from 'node:http';
import * as oauth from 'oauth4webapi';
import type { IntegrationConfig } from '../config/types.js';
import { CredproxyError, ERROR_HEADER, isCredproxyError } from '../errors.js';
import { reportStoreFailure, storeCall } from '../store/failure.js';
import type { Runtime } from '../runtime.js';
import type { Connection } from '../store/types.js';
import { authorizationServer, requestToken, TokenEndpointError } from './token-client.js';
import { withParams, type OAuthAuthConfig } from './client-config.js';
import { sendFlowError, sendPage } from './pages.js';
import { nonceMatches, readNonce } from './binding.js';
import { peekState, takeState, type FlowState } from './state.js';
import { applyTokenSet } from './token-set.js';

/** A code exchange gets as long as a token refresh. */
const EXCHANGE_TIMEOUT_MS = 30_000;

/** The config of the integration's scheme that connects through an OAuth link, or a 400 when it has none. */
export function oauth2ConfigOf(integration: IntegrationConfig | undefined, name: string): OAuthAuthConfig {
  if (!integration) throw new CredproxyError('not_found', `no integration named "${name}"`);
  const s = integration.schemes.find((d) => d.traits.connectable === 'oauth2');
  if (!s) throw new CredproxyError('bad_request', `integration "${name}" has no oauth2 scheme to connect with`);
  // A scheme that says it connects with 'oauth2' takes the oauth2 client keys (its spec spreads oauthClientSpec).
  return s.config as OAuthAuthConfig;
}

export const callbackUrl = (rt: Runtime) => `${rt.current.config.settings.public_url}/connect/callback`;


/**
 * Runs a browser-facing handler: its errors become a page for browsers, JSON for programs.
 * HEAD (link checkers, previews) answers without consuming the single-use link or state.
 */
export function browserFacing(fn: (rt: Runtime, req: IncomingMessage, res: ServerResponse, params: string[]) => Promise<void>) {
  return async (rt: Runtime, req: IncomingMessage, res: ServerResponse, params: string[]) => {
    if (req.method === 'HEAD') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end();
      return;
    }
    try {
      await fn(rt, req, res, params);
    } catch (err) {
      if (!isCredproxyError(err)) throw err;
      reportStoreFailure(rt, err);
      sendFlowError(req, res, err);
    }
  };
}

/** Provider text that ends up in the store and on a page: one line, bounded. */
const tidy = (s: string) => s.replace(/[\u0000-\u001f\u007f]+/g, ' ').slice(0, 300);

/**
 * GET /connect/callback: the state must come back to the browser that pressed the connect
 * button (its cookie nonce), else nothing is used up or stored: someone who was sent the
 * authorize URL cannot get their account stored under the link's entity. Then the state is
 * taken (a bad one stores nothing), and either the provider's error marks the connection
 * failed, or the code is exchanged and the connection becomes active.
 */
export const finishFlow = browserFacing(async (rt, req, res) => {
  const url = new URL(req.url ?? '/', 'http://credproxy.invalid');
  const bound = await peekState(rt.store.kv, url.searchParams.get('state'));
  if (!nonceMatches(readNonce(req, rt.current.config.settings.public_url), bound.browser)) {
    rt.log.warn({ entity: bound.entity, integration: bound.integration, label: bound.label }, 'connect callback refused: another browser than the one that started the flow');
    return sendPage(
      res,
      400,
      'Connection not completed',
      'This sign-in was started in another browser (or this browser did not keep its cookie). Nothing was connected. Start again from the connect link, in the same browser, with cookies allowed.',
      { [ERROR_HEADER]: 'bad_request' },
    );
  }
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
  const existing = await storeCall('connection.get', () => rt.store.get(flow.entity, flow.integration, { label: flow.label }));
  const tokens = applyTokenSet(undefined, set, now);
  const connection: Connection = {
    entity: flow.entity,
    integration: flow.integration,
    ...(flow.label === undefined ? {} : { label: flow.label }),
    scheme: config.type,
    params: flow.params,
    status: 'active',
    ...tokens,
    // A token response without `scope` granted exactly what was asked for (RFC 6749 §5.1).
    scopes: tokens.scopes ?? flow.scopes,
    created_at: existing?.created_at ?? now,
    updated_at: now,
  };
  await storeCall('connection.put', () => rt.store.put(connection));
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
  const existing = await storeCall('connection.get', () => rt.store.get(flow.entity, flow.integration, { label: flow.label }));
  rt.log.warn({ entity: flow.entity, integration: flow.integration, label: flow.label, reason }, 'connect flow failed');
  if (existing?.status === 'active') return;
  await storeCall('connection.put', () =>
    rt.store.put({
      entity: flow.entity,
      integration: flow.integration,
      ...(flow.label === undefined ? {} : { label: flow.label }),
      // The scheme that connects by link, if the integration still has one.
      scheme: rt.current.config.integrations.get(flow.integration)?.schemes.find((d) => d.traits.connectable === 'oauth2')?.type ?? 'oauth2',
      params: flow.params,
      status: 'failed',
      reason,
      credentials: existing?.credentials ?? {},
      created_at: existing?.created_at ?? now,
      updated_at: now,
    }),
  );
}
