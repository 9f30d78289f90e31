import type { IncomingMessage, ServerResponse } from 'node:http';
import { CredproxyError, isCredproxyError } from '../../errors.js';
import { isLoopback } from '../../proxy/client-auth.js';
import type { Runtime } from '../../runtime.js';
import { reportStoreFailure } from '../../store/failure.js';
import { escapeHtml, sendHtml } from '../page.js';
import { readSession, type Session } from './session.js';

/**
 * What every dashboard page shares: the switch (`ui.enabled`), the session check, the
 * navigation, and errors as a page rather than the API's JSON. The pages are static HTML
 * with plain forms (no script), under the same strict headers as the connect page.
 */

// Wider than the connect page (tables), still readable on a phone: tables scroll inside
// their own box instead of widening the page, inputs take the width they are given.
const STYLE =
  'body{max-width:64em}nav{display:flex;flex-wrap:wrap;gap:.25em 1em;align-items:center;border-bottom:1px solid #ddd;padding-bottom:.5em}' +
  'nav form{margin-left:auto}nav button{padding:.25em 1em}' +
  '.scroll{overflow-x:auto}table{border-collapse:collapse;width:100%;min-width:40em}th,td{text-align:left;padding:.3em .6em;border-bottom:1px solid #eee;vertical-align:top;overflow-wrap:normal}' +
  'svg.chart{display:block;max-width:560px;height:auto;margin:1em 0}.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%);white-space:nowrap}' +
  'dl.grid{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:.35em 1.5em}dl.grid dd{margin:0}' +
  'label{display:block;font-weight:600;margin:.5em 0 .15em}input,select{font:inherit;padding:.35em;max-width:100%;box-sizing:border-box}' +
  'input[type=text],input[type=password]{width:100%;max-width:28em}input#link{max-width:none}' +
  'form.inline{display:flex;flex-wrap:wrap;gap:.5em 1em;align-items:flex-end}form.inline>div{max-width:100%}form.inline>div.field{flex:1 1 14em;max-width:28em}' +
  'form.inline label{margin:0}.error{color:#991b1b;background:#fef2f2;border:1px solid #fecaca;padding:.5em 1em;border-radius:.375em}' +
  '.ok{background:#f0fdf4;border:1px solid #bbf7d0;padding:.5em 1em;border-radius:.375em}button.danger{background:#b91c1c}button.danger:hover{background:#991b1b}' +
  '.status{font-weight:600}.s-active{color:#166534}.s-expired,.s-failed{color:#991b1b}.s-initiated{color:#92400e}code{overflow-wrap:anywhere}';

export const h = escapeHtml;

/** An ISO time as people read it: `2026-12-04 13:58 UTC`. */
export const when = (iso: string) => `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;

export interface DashPage {
  status?: number;
  title: string;
  bodyHtml: string;
  headers?: Record<string, string | string[]>;
}

/** A page of the dashboard; signed in, with the navigation and the sign-out button. */
export function sendPage(res: ServerResponse, s: Session | undefined, p: DashPage): void {
  const nav = s
    ? '<nav aria-label="Dashboard"><a href="/ui/integrations">Integrations</a><a href="/ui/entities">Entities</a><a href="/ui/activity">Activity</a><a href="/ui/tokens">Entity tokens</a>' +
      `<form method="post" action="/ui/sign-out">${csrfField(s)}<button type="submit">Sign out</button></form></nav>`
    : '';
  sendHtml(res, {
    status: p.status ?? 200,
    title: p.title,
    bodyHtml: nav + p.bodyHtml,
    style: STYLE,
    formAction: ["'self'"],
    headers: p.headers,
  });
}

export const csrfField = (s: Session) => `<input type="hidden" name="csrf" value="${h(s.csrf)}">`;

/** `ui.enabled`, unset: on only while credproxy listens on loopback. */
export const dashboardEnabled = (rt: Runtime) => rt.current.config.settings.ui.enabled ?? isLoopback(rt.current.config.settings.listen.host);

export function redirect(res: ServerResponse, to: string, headers: Record<string, string> = {}): void {
  res.writeHead(303, { ...headers, location: to, 'cache-control': 'no-store', 'content-length': 0 }).end();
}

type PageHandler = (rt: Runtime, req: IncomingMessage, res: ServerResponse, s: Session, params: string[]) => Promise<void> | void;

/**
 * A page for a signed-in operator. Without a session a GET goes to the sign-in page and a POST
 * is refused (401) with nothing changed. An error is a page saying what went wrong.
 */
export function signedIn(handler: PageHandler) {
  return async (rt: Runtime, req: IncomingMessage, res: ServerResponse, params: string[]) => {
    await asPage(rt, res, undefined, async () => {
      if (!dashboardEnabled(rt)) throw new CredproxyError('not_found', 'the dashboard is off here (ui.enabled); see docs/dashboard.md');
      const s = await readSession(rt, req);
      if (!s) {
        if (req.method === 'GET' || req.method === 'HEAD') return redirect(res, '/ui/sign-in');
        throw new CredproxyError('unauthorized', 'you are not signed in (or your session has ended); sign in again — nothing was changed');
      }
      await asPage(rt, res, s, () => handler(rt, req, res, s, params));
    });
  };
}

/** Runs a page; a credproxy error becomes a page with the error's status and message. */
export async function asPage(rt: Runtime, res: ServerResponse, s: Session | undefined, fn: () => Promise<void> | void): Promise<void> {
  try {
    await fn();
  } catch (err) {
    if (!isCredproxyError(err) || res.headersSent) throw err;
    reportStoreFailure(rt, err);
    const link = s ? '' : '<p><a href="/ui/sign-in">Sign in</a></p>';
    sendPage(res, s, {
      status: err.status,
      title: err.status === 401 ? 'Not signed in' : 'That did not work',
      bodyHtml: `<p class="error" role="alert">${h(err.message)}</p>${link}`,
      headers: { ...err.headers, 'x-credproxy-error': err.code },
    });
  }
}
