import type { ServerResponse } from 'node:http';
import { fieldsHtml, hidden, paramsHtml, type FieldView, type ParamView } from './fields-form.js';
import { logoPath } from './logo.js';
import { escapeHtml, sendHtml } from './page.js';

/** One way of connecting the page offers (a scheme). */
export interface WayView {
  type: string;
  kind: 'oauth2' | 'fields';
  title: string;
  fields: readonly FieldView[];
}

/** What the connect page tells the user before anything happens. */
export interface ConnectPageView {
  /** where the user comes back to: the host of the link's redirect_to, or credproxy's own */
  application: string;
  integration: string;
  description?: string;
  /** the integration's `display` block: a name for people, a logo, its docs */
  display?: { name?: string; logo_url?: string; docs_url?: string; logo?: { hash: string } };
  /** the host of the provider's consent page, when a way is oauth2 */
  provider?: string;
  entity: string;
  label?: string;
  /** absolute URL the forms post to */
  action: string;
  /** the link token and the CSRF token, posted back as hidden fields */
  token: string;
  csrf: string;
  /** the ways the link offers, at least one */
  ways: readonly WayView[];
  /** params the user supplies (none when the link fixed them) */
  params: readonly ParamView[];
  /** params the link fixed, shown as they are */
  fixedParams: Readonly<Record<string, string>>;
  /** what the user typed before (params, non-secret fields), to fill in again after an error */
  values?: { params?: Record<string, string>; fields?: Record<string, string> };
  /** why the last post was refused, in a sentence */
  error?: string;
  /** the way chosen on the first step: its fields form, with the params carried along */
  chosen?: WayView;
}

const row = (k: string, val: string) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(val)}</dd>`;

function overview(v: ConnectPageView): string {
  const account = v.label === undefined ? v.entity : `${v.entity} (connection "${v.label}")`;
  const oauthOnly = v.ways.length === 1 && v.ways[0]!.kind === 'oauth2';
  const fixed = Object.entries(v.fixedParams).map(([k, val]) => row(k, val)).join('');
  const name = titleOf(v);
  const src = logoSrc(v);
  const logo = src ? `<img class="logo" src="${escapeHtml(src)}" alt="${escapeHtml(name)} logo" height="48">` : '';
  const docs = v.display?.docs_url ? `<dt>Documentation</dt><dd><a href="${escapeHtml(v.display.docs_url)}" rel="noopener noreferrer">${escapeHtml(name)} documentation</a></dd>` : '';
  return (
    logo +
    `<p>${escapeHtml(v.application)} asks to connect your ${escapeHtml(name)} account.</p>` +
    '<dl>' +
    row('Application', v.application) +
    row('Integration', v.description ? `${v.integration}: ${v.description}` : v.integration) +
    (oauthOnly && v.provider ? row('You sign in at', v.provider) : '') +
    docs +
    fixed +
    row('Stored for', account) +
    '</dl>'
  );
}

/** A logo_file is served by credproxy itself (src/ui/logo.ts, a path on this origin); a logo_url is the operator's URL. */
const logoSrc = (v: ConnectPageView) => (v.display?.logo ? logoPath(v.integration, v.display.logo) : v.display?.logo_url);

/** The integration as people call it: its display name, else its config name. */
const titleOf = (v: ConnectPageView) => v.display?.name ?? v.integration;

const errorHtml = (error: string | undefined) => (error ? `<p class="error" role="alert" id="error">${escapeHtml(error)}</p>` : '');

function formStart(v: ConnectPageView, step: 'choose' | 'submit'): string {
  return (
    `<form method="post" action="${escapeHtml(v.action)}">` +
    hidden('token', v.token) +
    hidden('csrf', v.csrf) +
    hidden('step', step)
  );
}

/**
 * The connect page: a link opened by accident (or by a preview bot) stops here and nothing is
 * used up; the user sees what is about to be connected and decides with the button. With
 * several ways, the first step chooses one (radio buttons: no script needed to show the
 * chosen way's fields); with one, its params and fields are on this page already.
 */
export function connectPageHtml(v: ConnectPageView): string {
  if (v.chosen) return overview(v) + chosenFormHtml(v, v.chosen);
  const params = paramsHtml(v.params, v.values?.params ?? {});
  let form: string;
  if (v.ways.length > 1) {
    const choices = v.ways
      .map((w, i) => {
        const id = `scheme-${i}`;
        const title = w.kind === 'oauth2' ? (v.provider ? `Sign in at ${v.provider}` : w.title) : w.title;
        return `<div class="choice"><input type="radio" name="scheme" id="${id}" value="${escapeHtml(w.type)}"${i === 0 ? ' checked' : ''}> <label for="${id}">${escapeHtml(title)}</label></div>`;
      })
      .join('');
    form = formStart(v, 'choose') + `<fieldset><legend>How do you want to connect?</legend>${choices}</fieldset>` + params + '<button type="submit">Continue</button></form>';
  } else {
    const way = v.ways[0]!;
    if (way.kind === 'oauth2') {
      form = formStart(v, 'choose') + hidden('scheme', way.type) + params + `<button type="submit">Continue to ${escapeHtml(v.provider ?? 'sign in')}</button></form>`;
    } else {
      form = formStart(v, 'submit') + hidden('scheme', way.type) + params + fieldsHtml(way.fields, v.values?.fields ?? {}) + '<button type="submit">Connect</button></form>';
    }
  }
  return (
    overview(v) +
    errorHtml(v.error) +
    form +
    '<p>If you did not ask for this, close this page: nothing happens until you press the button.</p>'
  );
}

/** The second step: the chosen way's fields, with the params of the first step carried as hidden fields. */
function chosenFormHtml(v: ConnectPageView, way: WayView): string {
  const carried = Object.entries(v.values?.params ?? {})
    .map(([k, val]) => hidden(`p.${k}`, val))
    .join('');
  const shown = Object.entries(v.values?.params ?? {}).map(([k, val]) => row(k, val)).join('');
  const back = `${v.action}?token=${encodeURIComponent(v.token)}`;
  return (
    (shown ? `<dl>${shown}</dl>` : '') +
    `<h2>${escapeHtml(way.title)}</h2>` +
    errorHtml(v.error) +
    formStart(v, 'submit') +
    hidden('scheme', way.type) +
    carried +
    fieldsHtml(way.fields, v.values?.fields ?? {}) +
    '<button type="submit">Connect</button></form>' +
    `<p><a href="${escapeHtml(back)}">Choose another way to connect</a></p>`
  );
}

/** `formAction`: credproxy's own origin, the only place the forms may post to. */
export function sendConnectPage(res: ServerResponse, v: ConnectPageView, formAction: string, o: { setCookie?: string; status?: number } = {}): void {
  sendHtml(res, {
    status: o.status ?? 200,
    title: `Connect ${titleOf(v)}`,
    bodyHtml: connectPageHtml(v),
    formAction: [formAction],
    ...(v.display?.logo ? { imgSrc: ["'self'"] } : v.display?.logo_url ? { imgSrc: [new URL(v.display.logo_url).origin] } : {}),
    headers: o.setCookie ? { 'set-cookie': o.setCookie } : {},
  });
}

/**
 * The button's answer: on to the provider by a refresh, not a 3xx. Browsers apply the connect
 * page's `form-action` to every redirect that follows a form post (Chrome, Firefox), and
 * providers hop between their own origins on the way to consent; a refresh is a new
 * navigation, so `form-action` can stay on credproxy's origin alone without breaking them.
 */
export function sendContinuePage(res: ServerResponse, authorize: URL): void {
  const href = escapeHtml(authorize.href);
  sendHtml(res, {
    status: 200,
    title: `Continuing to ${authorize.host}`,
    headHtml: `<meta http-equiv="refresh" content="0; url=${href}">`,
    bodyHtml: `<p><a href="${href}">Continue to ${escapeHtml(authorize.host)}</a> if nothing happens.</p>`,
  });
}
