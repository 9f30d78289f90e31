import type { ServerResponse } from 'node:http';
import { escapeHtml, sendHtml } from './page.js';

/** What the connect page tells the user before anything happens. */
export interface ConnectPageView {
  /** where the user comes back to: the host of the link's redirect_to, or credproxy's own */
  application: string;
  integration: string;
  description?: string;
  /** the host of the provider's consent page */
  provider: string;
  entity: string;
  label?: string;
  /** absolute URL the button posts to */
  action: string;
  /** the link token and the CSRF token, posted back as hidden fields */
  token: string;
  csrf: string;
}

/**
 * The connect page: a link opened by accident (or by a preview bot) stops here and nothing is
 * used up; the user sees what is about to be connected and decides with the button.
 */
export function connectPageHtml(v: ConnectPageView): string {
  const row = (k: string, val: string) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(val)}</dd>`;
  const account = v.label === undefined ? v.entity : `${v.entity} (connection "${v.label}")`;
  return (
    `<p>${escapeHtml(v.application)} asks to connect your ${escapeHtml(v.integration)} account.</p>` +
    '<dl>' +
    row('Application', v.application) +
    row('Integration', v.description ? `${v.integration}: ${v.description}` : v.integration) +
    row('You sign in at', v.provider) +
    row('Stored for', account) +
    '</dl>' +
    `<form method="post" action="${escapeHtml(v.action)}">` +
    `<input type="hidden" name="token" value="${escapeHtml(v.token)}">` +
    `<input type="hidden" name="csrf" value="${escapeHtml(v.csrf)}">` +
    `<button type="submit">Continue to ${escapeHtml(v.provider)}</button></form>` +
    '<p>If you did not ask for this, close this page: nothing happens until you press the button.</p>'
  );
}

/** `formAction`: credproxy's own origin, the only place the button may post to. */
export function sendConnectPage(res: ServerResponse, v: ConnectPageView, setCookie: string, formAction: string): void {
  sendHtml(res, {
    status: 200,
    title: `Connect ${v.integration}`,
    bodyHtml: connectPageHtml(v),
    formAction: [formAction],
    headers: { 'set-cookie': setCookie },
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
