import type { ServerResponse } from 'node:http';
import * as oauth from 'oauth4webapi';
import { acceptParams, integrationOf } from '../api/connections.js';
import { CredproxyError, isCredproxyError } from '../errors.js';
import type { Runtime } from '../runtime.js';
import { sendConnectPage, sendContinuePage, type ConnectPageView, type WayView } from '../ui/connect-page.js';
import { formToken, formTokenMatches, newNonce, nonceHash, readNonce, setCookie } from './binding.js';
import { withParams } from './client-config.js';
import { browserFacing, callbackUrl, oauth2ConfigOf } from './connect.js';
import { FLOW_TTL_MS, peekLink, takeLink } from './links.js';
import { offeredWays, wayTitle, type Way } from './offer.js';
import { asSentence } from './pages.js';
import { saveState } from './state.js';
import { readConnectForm, submitFields, type LinkContext } from './submit.js';

async function linkContext(rt: Runtime, name: string, token: string, nonce: string): Promise<LinkContext> {
  const integration = integrationOf(rt, name);
  const { id, record } = await peekLink(rt.store.kv, rt.adminToken, token, name);
  const ways = offeredWays(integration, record.scheme);
  const publicUrl = rt.current.config.settings.public_url;
  const home = new URL(record.redirect_to ?? publicUrl);
  // The provider's host is only known once its params are: a templated authorize URL shows none.
  let provider: string | undefined;
  if (ways.some((w) => w.kind === 'oauth2')) {
    try {
      provider = new URL(withParams(oauth2ConfigOf(integration, name), record.params).authorize_url!).host;
    } catch {
      provider = undefined;
    }
  }
  const view: ConnectPageView = {
    application: home.host,
    integration: integration.name,
    description: integration.description,
    display: integration.display,
    provider,
    entity: record.entity,
    label: record.label,
    action: `${publicUrl}/connect/${encodeURIComponent(name)}`,
    token,
    csrf: formToken(rt.adminToken, id, nonce),
    ways: ways.map((w) => wayView(w, provider)),
    params: record.ask_params ? integration.params.map((p) => ({ name: p.name, pattern: p.pattern, description: p.description, default: p.default })) : [],
    fixedParams: record.ask_params ? {} : record.params,
  };
  return { name, integration, token, id, record, ways, view };
}

const wayView = (w: Way, provider: string | undefined): WayView => ({
  type: w.type,
  kind: w.kind,
  title: wayTitle(w, provider),
  fields: w.fields.map((f) => ({ name: f.name, secret: f.secret, optional: f.optional, pattern: f.pattern?.source, description: f.description, docsUrl: f.docsUrl, multiline: f.multiline })),
});

/**
 * GET /connect/{integration}?token=…: verifies the link without using it up and shows what is
 * about to be connected, with its form. The page binds this browser with a cookie nonce.
 */
export const startFlow = browserFacing(async (rt, req, res, [name]) => {
  const url = new URL(req.url ?? '/', 'http://credproxy.invalid');
  const token = url.searchParams.get('token');
  if (!token) throw new CredproxyError('bad_request', 'the connect link has no token');
  const publicUrl = rt.current.config.settings.public_url;
  // One nonce per browser, not per link: two connect pages open in two tabs both keep working.
  const nonce = readNonce(req, publicUrl) ?? newNonce();
  const ctx = await linkContext(rt, name!, token, nonce);
  sendConnectPage(res, ctx.view, new URL(publicUrl).origin, { setCookie: setCookie(publicUrl, nonce, FLOW_TTL_MS / 1000) });
});

/**
 * POST /connect/{integration} (the page's forms): the cookie and the form token must belong
 * together, else nothing happens. Then the chosen way: oauth2 uses the link up and moves the
 * browser on to the provider; a scheme with fields shows them (first step of several ways) or
 * stores what was typed (src/oauth/submit.ts). A bad param or field shows the form again with
 * the error, and the link stays usable.
 */
export const continueFlow = browserFacing(async (rt, req, res, [name]) => {
  const form = await readConnectForm(req);
  const token = form.one('token');
  if (!token) throw new CredproxyError('bad_request', 'the connect form has no link token');
  const nonce = readNonce(req, rt.current.config.settings.public_url);
  const refuseForeign = (id: string) => {
    if (!formTokenMatches(rt.adminToken, id, nonce, form.one('csrf'))) {
      rt.log.warn({ integration: name, cookie: nonce !== undefined }, 'connect form refused: cookie and form token do not match');
      throw new CredproxyError('bad_request', 'this connect page does not belong to this browser; open the connect link again in this browser (with cookies allowed)');
    }
  };
  // Checked on the peeked id before the page is rendered from it: nonce is then the cookie's.
  const { id } = await peekLink(rt.store.kv, rt.adminToken, token, name!);
  refuseForeign(id);
  const ctx = await linkContext(rt, name!, token, nonce!);
  const values = { params: form.prefixed('p.'), fields: form.nonSecretFields(ctx.ways, form.one('scheme')) };
  const again = (error: string, chosen?: WayView) =>
    sendConnectPage(res, { ...ctx.view, values, error, chosen }, new URL(rt.current.config.settings.public_url).origin, { status: 400 });
  // No choice posted: the first way, which the page shows checked (the integration's default scheme).
  const schemeName = form.one('scheme') ?? ctx.ways[0]!.type;
  const way = ctx.ways.find((w) => w.type === schemeName);
  if (!way) return again(`This link cannot connect with "${schemeName}"; choose one of the ways below.`);
  let params: Record<string, string>;
  try {
    params = ctx.record.ask_params ? acceptParams(ctx.integration, nonEmpty(values.params)) : ctx.record.params;
  } catch (err) {
    if (isCredproxyError(err) && err.code === 'bad_request') return again(asSentence(err.message));
    throw err;
  }
  const chosenView = ctx.ways.length > 1 ? wayView(way, ctx.view.provider) : undefined;
  if (way.kind === 'oauth2') return startOAuth(rt, res, ctx, params, refuseForeign, nonce!);
  if (form.one('step') !== 'submit') return sendConnectPage(res, { ...ctx.view, values, chosen: chosenView }, new URL(rt.current.config.settings.public_url).origin);
  await submitFields(rt, res, ctx, { way, params, fields: form.prefixed('f.'), refuseForeign, again: (error) => again(error, chosenView) });
});

/** A blank input means "not given": the param's default applies, or the message says it is required. */
const nonEmpty = (m: Record<string, string>) => Object.fromEntries(Object.entries(m).filter(([, v]) => v !== ''));

/**
 * The oauth2 way: the link is used up and the browser goes to the provider with state and
 * PKCE; the state keeps the hash of this browser's nonce for the callback to check. The
 * answer is a page that moves on by itself (see sendContinuePage), not a redirect.
 */
async function startOAuth(rt: Runtime, res: ServerResponse, ctx: LinkContext, params: Record<string, string>, check: (id: string) => void, nonce: string) {
  const config = oauth2ConfigOf(ctx.integration, ctx.name);
  const { record: link } = await takeLink(rt.store.kv, rt.adminToken, ctx.token, ctx.name, check);
  const c = withParams(config, params);
  const scopes = link.scopes ?? c.scopes;
  const verifier = c.pkce === false ? undefined : oauth.generateRandomCodeVerifier();
  const state = await saveState(rt.store.kv, {
    entity: link.entity,
    integration: ctx.name,
    label: link.label,
    params,
    verifier,
    redirect_to: link.redirect_to,
    scopes,
    browser: nonceHash(nonce),
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
  rt.log.info({ entity: link.entity, integration: ctx.name, label: link.label, pkce: verifier !== undefined }, 'connect flow started');
  sendContinuePage(res, authorize);
}
