import type { IncomingMessage, ServerResponse } from 'node:http';
import { CredproxyError } from '../../errors.js';
import type { Runtime } from '../../runtime.js';
import { takeOrRefuse } from '../../proxy/rate-limit.js';
import { asPage, dashboardEnabled, h, redirect, sendPage, signedIn } from './layout.js';
import { clearCookie, endSession, readForm, readSession, sameSecret, startSession } from './session.js';

/**
 * Sign in with the admin token, sign out. The sign-in form has no CSRF token (there is no
 * session yet); a forged sign-in would need the admin token, which already is everything.
 */

/** Sign-in attempts per minute from one address (a bucket: this many at once, then this rate). */
export const SIGN_IN_PER_MINUTE = 10;

/**
 * Guessing the admin token through the form is held to SIGN_IN_PER_MINUTE tries per address,
 * in the store's rate buckets (shared by every instance on a shared store). The key has a `/`,
 * which no integration name has, so it never meets a proxy bucket (`integration:entity`).
 */
async function limitAttempts(rt: Runtime, req: IncomingMessage): Promise<void> {
  const from = req.socket.remoteAddress ?? 'unknown';
  await takeOrRefuse(rt.store.rateLimit, `/ui/sign-in:${from}`, SIGN_IN_PER_MINUTE, (seconds) => {
    rt.log.warn({ from }, 'dashboard sign-in refused: too many attempts');
    return `too many sign-in attempts from this address; try again in ${seconds} s`;
  });
}

function enabled(rt: Runtime): void {
  if (!dashboardEnabled(rt)) throw new CredproxyError('not_found', 'the dashboard is off here (ui.enabled); see docs/dashboard.md');
}

function signInPage(res: ServerResponse, status: number, message?: string): void {
  const error = message ? `<p class="error" role="alert">${h(message)}</p>` : '';
  sendPage(res, undefined, {
    status,
    title: 'credproxy dashboard',
    bodyHtml:
      `${error}<form method="post" action="/ui/sign-in">` +
      // a username for password managers (and Chromium's form check); the server reads only the token
      '<input name="username" autocomplete="username" value="admin" hidden readonly><label for="token">Admin token</label>' +
      '<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>' +
      '<p><button type="submit">Sign in</button></p></form>' +
      '<p>The admin token is in credproxy.yaml (<code>admin_token</code>), in <code>CREDPROXY_ADMIN_TOKEN</code>, or in the data folder. A session lasts 8 hours.</p>',
  });
}

/** GET /ui/: the integrations when signed in, else the sign-in page. */
export async function dashboardHome(rt: Runtime, req: IncomingMessage, res: ServerResponse): Promise<void> {
  await asPage(rt, res, undefined, async () => {
    enabled(rt);
    redirect(res, (await readSession(rt, req)) ? '/ui/integrations' : '/ui/sign-in');
  });
}

export async function showSignIn(rt: Runtime, req: IncomingMessage, res: ServerResponse): Promise<void> {
  await asPage(rt, res, undefined, async () => {
    enabled(rt);
    if (await readSession(rt, req)) return redirect(res, '/ui/integrations');
    signInPage(res, 200);
  });
}

export async function signIn(rt: Runtime, req: IncomingMessage, res: ServerResponse): Promise<void> {
  await asPage(rt, res, undefined, async () => {
    enabled(rt);
    const form = await readForm(rt, req, undefined);
    await limitAttempts(rt, req);
    const token = form.get('token') ?? '';
    if (!token || !sameSecret(token, rt.adminToken)) {
      rt.log.warn('dashboard sign-in refused: wrong admin token');
      return signInPage(res, 401, 'That is not the admin token. Nothing was signed in.');
    }
    const cookie = await startSession(rt);
    rt.log.info('dashboard sign-in');
    redirect(res, '/ui/integrations', { 'set-cookie': cookie });
  });
}

export const signOut = signedIn(async (rt, req, res, s) => {
  await readForm(rt, req, s);
  await endSession(rt, s);
  rt.log.info('dashboard sign-out');
  sendPage(res, undefined, {
    title: 'Signed out',
    bodyHtml: '<p class="ok" role="status">You are signed out; this session no longer works anywhere.</p><p><a href="/ui/sign-in">Sign in again</a></p>',
    headers: { 'set-cookie': clearCookie(rt.current.config.settings.public_url) },
  });
});
