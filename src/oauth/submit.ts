import type { IncomingMessage, ServerResponse } from 'node:http';
import { readBody } from '../api/http.js';
import { prepareConnection, saveConnection } from '../api/connections.js';
import { CredproxyError, isCredproxyError } from '../errors.js';
import type { Runtime } from '../runtime.js';
import { escapeHtml, sendHtml } from '../ui/page.js';
import type { LiveIntegration } from '../auth/scheme-set.js';
import type { ConnectPageView } from '../ui/connect-page.js';
import { takeLink, type LinkRecord } from './links.js';
import type { Way } from './offer.js';
import { asSentence } from './pages.js';

/** Everything a connect page and its posts know of one link. */
export interface LinkContext {
  name: string;
  integration: LiveIntegration;
  token: string;
  id: string;
  record: LinkRecord;
  ways: Way[];
  /** the page as first shown; a post re-renders it with values and an error */
  view: ConnectPageView;
}

/** A whole form: a few params and fields; a PEM key fits with room to spare. */
const FORM_LIMIT = 64 * 1024;
/** One value: far above any key or token, far below what could fill a store or a log. */
export const VALUE_LIMIT = 8192;

/** The connect page's urlencoded form, bounded; each name at most once, each value bounded. */
export interface ConnectForm {
  one(name: string): string | undefined;
  /** the values under `prefix` (p. for params, f. for fields), by their name after it */
  prefixed(prefix: string): Record<string, string>;
  /** the typed fields of `scheme` that are not secret: they may be shown again */
  nonSecretFields(ways: readonly Way[], scheme: string | undefined): Record<string, string>;
}

export async function readConnectForm(req: IncomingMessage): Promise<ConnectForm> {
  if (!/^application\/x-www-form-urlencoded\b/i.test(req.headers['content-type'] ?? '')) {
    throw new CredproxyError('bad_request', 'the connect form must be posted as application/x-www-form-urlencoded');
  }
  const form = new URLSearchParams((await readBody(req, FORM_LIMIT)).toString('utf8'));
  const seen = new Set<string>();
  for (const [k, v] of form) {
    // The name is ours (p.subdomain); it is safe to say. The value may be a secret: never shown.
    const shown = k.replace(/[^A-Za-z0-9._-]/g, '?').slice(0, 64);
    if (seen.has(k)) throw new CredproxyError('bad_request', `the connect form gives ${shown} more than once`);
    if (v.length > VALUE_LIMIT) throw new CredproxyError('bad_request', `the connect form's ${shown} is longer than ${VALUE_LIMIT} characters`);
    seen.add(k);
  }
  const prefixed = (prefix: string) => {
    const out: Record<string, string> = {};
    for (const [k, v] of form) if (k.startsWith(prefix)) out[k.slice(prefix.length)] = v;
    return out;
  };
  return {
    one: (name) => form.get(name) ?? undefined,
    prefixed,
    nonSecretFields: (ways, scheme) => {
      const way = ways.find((w) => w.type === scheme) ?? (ways.length === 1 ? ways[0] : undefined);
      const typed = prefixed('f.');
      const out: Record<string, string> = {};
      for (const f of way?.fields ?? []) if (!f.secret && typed[f.name] !== undefined) out[f.name] = typed[f.name]!;
      return out;
    },
  };
}

interface Submission {
  way: Way;
  params: Record<string, string>;
  fields: Record<string, string>;
  /** the CSRF check, run again on the link id as it is used up */
  refuseForeign: (id: string) => void;
  /** the form again, with an error; the link stays usable */
  again: (error: string) => void;
}

/**
 * The fields form's post: checked exactly as an admin PUT is (the scheme accepts the fields,
 * params against their patterns, header values, then the integration's `verify`), and only
 * then is the link used up and the connection stored. A refusal shows the form again, says
 * why, and never repeats a secret.
 */
export async function submitFields(rt: Runtime, res: ServerResponse, ctx: LinkContext, s: Submission): Promise<void> {
  // A blank optional field is one left out; a blank required one is reported as missing.
  const credentials = Object.fromEntries(Object.entries(s.fields).filter(([, v]) => v !== ''));
  const { entity, label } = ctx.record;
  const shownName = ctx.integration.display?.name ?? ctx.integration.name;
  let prepared;
  try {
    prepared = await prepareConnection(rt, ctx.integration, { entity, label, scheme: s.way.type, params: s.params, credentials });
  } catch (err) {
    if (isCredproxyError(err) && err.code === 'bad_request') return s.again(`${asSentence(err.message)} Nothing was stored.`);
    throw err;
  }
  const v = prepared.verification;
  if (v?.refused) {
    rt.log.warn({ entity, integration: ctx.name, label, status: v.status, via: 'connect page' }, 'connection not stored: verification failed');
    return s.again(`${shownName} did not accept these credentials (it answered ${v.status}). Nothing was stored; check them and try again.`);
  }
  // Only now is the link used up: a refused attempt above leaves it for the next try.
  await takeLink(rt.store.kv, rt.adminToken, ctx.token, ctx.name, s.refuseForeign);
  await saveConnection(rt, prepared, 'connect page');
  const account = label === undefined ? '' : ` as your "${label}" account`;
  const unverified = v && !v.ok ? ' It could not be checked right now; it will be used as it is.' : '';
  const text = `${shownName} is connected${account}.${unverified}`;
  if (ctx.record.redirect_to) {
    const next = new URL(ctx.record.redirect_to);
    next.searchParams.set('status', 'active');
    next.searchParams.set('integration', ctx.name);
    if (label !== undefined) next.searchParams.set('label', label);
    return sendDone(res, text, next);
  }
  sendDone(res, `${text} You can close this page.`);
}

/**
 * The end of a connect through the form: a page, and on to `redirect_to` by a refresh. Not a
 * 3xx: browsers hold a redirect after a form post to the page's form-action (credproxy's
 * own origin), as the OAuth continue page explains.
 */
function sendDone(res: ServerResponse, text: string, next?: URL): void {
  const href = next ? escapeHtml(next.href) : '';
  sendHtml(res, {
    status: 200,
    title: 'Connected',
    headHtml: next ? `<meta http-equiv="refresh" content="0; url=${href}">` : undefined,
    bodyHtml: `<p role="status">${escapeHtml(text)}</p>` + (next ? `<p><a href="${href}">Continue to ${escapeHtml(next.host)}</a> if nothing happens.</p>` : ''),
  });
}
