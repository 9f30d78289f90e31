import type { IncomingMessage } from 'node:http';
import * as oauth from 'oauth4webapi';
import { readBody } from '../api/http.js';
import { CredproxyError } from '../errors.js';
import { sendConnectPage, sendContinuePage } from '../ui/connect-page.js';
import { formToken, formTokenMatches, newNonce, nonceHash, readNonce, setCookie } from './binding.js';
import { withParams } from './client-config.js';
import { browserFacing, callbackUrl, oauth2ConfigOf } from './connect.js';
import { FLOW_TTL_MS, peekLink, takeLink } from './links.js';
import { saveState } from './state.js';

/** The button's form is two short fields; anything bigger is not from our page. */
const FORM_LIMIT = 8 * 1024;

/**
 * GET /connect/{integration}?token=…: verifies the link without using it up and shows what is
 * about to be connected, with a button. The page binds this browser with a cookie nonce.
 */
export const startFlow = browserFacing(async (rt, req, res, [name]) => {
  const url = new URL(req.url ?? '/', 'http://credproxy.invalid');
  const token = url.searchParams.get('token');
  if (!token) throw new CredproxyError('bad_request', 'the connect link has no token');
  const integration = rt.current.config.integrations.get(name!);
  const config = oauth2ConfigOf(integration, name!);
  const { id, record } = await peekLink(rt.store.kv, rt.adminToken, token, name!);
  const publicUrl = rt.current.config.settings.public_url;
  // One nonce per browser, not per link: two connect pages open in two tabs both keep working.
  const nonce = readNonce(req, publicUrl) ?? newNonce();
  const authorize = new URL(withParams(config, record.params).authorize_url!);
  const home = new URL(record.redirect_to ?? publicUrl);
  sendConnectPage(
    res,
    {
      application: home.host,
      integration: integration!.name,
      description: integration!.description,
      provider: authorize.host,
      entity: record.entity,
      label: record.label,
      action: `${publicUrl}/connect/${encodeURIComponent(name!)}`,
      token,
      csrf: formToken(rt.adminToken, id, nonce),
    },
    setCookie(publicUrl, nonce, FLOW_TTL_MS / 1000),
    new URL(publicUrl).origin,
  );
});

/**
 * POST /connect/{integration} (the button): the cookie and the form token must belong together,
 * then the link is used up and the browser goes to the provider with state and PKCE; the state
 * keeps the hash of this browser's nonce for the callback to check.
 * The answer is a page that moves on by itself (see sendContinuePage), not a redirect.
 */
export const continueFlow = browserFacing(async (rt, req, res, [name]) => {
  const form = await readForm(req);
  const token = form.get('token');
  if (!token) throw new CredproxyError('bad_request', 'the connect form has no link token');
  const config = oauth2ConfigOf(rt.current.config.integrations.get(name!), name!);
  const nonce = readNonce(req, rt.current.config.settings.public_url);
  const { record: link } = await takeLink(rt.store.kv, rt.adminToken, token, name!, (id) => {
    if (!formTokenMatches(rt.adminToken, id, nonce, form.get('csrf') ?? undefined)) {
      rt.log.warn({ integration: name, cookie: nonce !== undefined }, 'connect form refused: cookie and form token do not match');
      throw new CredproxyError('bad_request', 'this connect page does not belong to this browser; open the connect link again in this browser (with cookies allowed)');
    }
  });
  const c = withParams(config, link.params);
  const scopes = link.scopes ?? c.scopes;
  const verifier = c.pkce === false ? undefined : oauth.generateRandomCodeVerifier();
  const state = await saveState(rt.store.kv, {
    entity: link.entity,
    integration: name!,
    label: link.label,
    params: link.params,
    verifier,
    redirect_to: link.redirect_to,
    scopes,
    browser: nonceHash(nonce!),
  });
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
  sendContinuePage(res, authorize);
});

/** The button's urlencoded body, bounded. */
async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  if (!/^application\/x-www-form-urlencoded\b/i.test(req.headers['content-type'] ?? '')) {
    throw new CredproxyError('bad_request', 'the connect form must be posted as application/x-www-form-urlencoded');
  }
  return new URLSearchParams((await readBody(req, FORM_LIMIT)).toString('utf8'));
}
