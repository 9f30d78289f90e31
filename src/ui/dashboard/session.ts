import { createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { readBody } from '../../api/http.js';
import { CredproxyError } from '../../errors.js';
import type { Runtime } from '../../runtime.js';
import { storeCall } from '../../store/failure.js';

/**
 * The dashboard's sign-in: the admin token, given once in a form, becomes a session cookie.
 * The cookie is `<id>.<expires>.<mac>`, signed with a key derived from the admin token (an
 * instance with another admin token refuses it without asking the store), and the session's
 * id is kept in the store's kv with a TTL, so instances sharing a store share sessions and
 * signing out ends the session everywhere. HttpOnly and SameSite=Strict: scripts cannot read
 * it and no other site's page sends it.
 */

export const SESSION_TTL_MS = 8 * 60 * 60 * 1000;
const COOKIE_VALUE = /^([A-Za-z0-9_-]{43})\.(\d{13})\.([A-Za-z0-9_-]{43})$/;

export interface Session {
  id: string;
  expiresAt: number;
  /** what every POST form of this session carries */
  csrf: string;
}

const isHttps = (publicUrl: string) => publicUrl.startsWith('https:');

/** `__Host-` (Secure, Path=/, no Domain) under https, as the connect flow's cookie (oauth/binding.ts). */
export const cookieName = (publicUrl: string) => (isHttps(publicUrl) ? '__Host-credproxy-ui' : 'credproxy-ui');

function cookieAttrs(publicUrl: string, value: string, maxAgeS: number): string {
  const attrs = [`${cookieName(publicUrl)}=${value}`, 'Path=/', `Max-Age=${maxAgeS}`, 'HttpOnly', 'SameSite=Strict'];
  if (isHttps(publicUrl)) attrs.push('Secure');
  return attrs.join('; ');
}

/** Derived from the admin token with its own label: never the admin token itself. */
const sessionKey = (adminToken: string) => Buffer.from(hkdfSync('sha256', adminToken, 'credproxy', 'dashboard-session v1', 32));
const mac = (adminToken: string, text: string) => createHmac('sha256', sessionKey(adminToken)).update(text).digest('base64url');
const kvKey = (id: string) => `ui-session:${createHash('sha256').update(id).digest('base64url')}`;
const sha = (s: string) => createHash('sha256').update(s).digest();

/** Constant time whatever the lengths: the digests are compared, not the strings. */
export const sameSecret = (a: string, b: string) => timingSafeEqual(sha(a), sha(b));

function session(adminToken: string, id: string, expiresAt: number): Session {
  return { id, expiresAt, csrf: mac(adminToken, `csrf.${id}`) };
}

/** A new session for a browser that gave the admin token: its Set-Cookie value. */
export async function startSession(rt: Runtime, now = Date.now()): Promise<string> {
  const id = randomBytes(32).toString('base64url');
  const expiresAt = now + SESSION_TTL_MS;
  await storeCall('ui_session', () => rt.store.kv.set(kvKey(id), String(expiresAt), SESSION_TTL_MS));
  const value = `${id}.${expiresAt}.${mac(rt.adminToken, `${id}.${expiresAt}`)}`;
  return cookieAttrs(rt.current.config.settings.public_url, value, SESSION_TTL_MS / 1000);
}

/** The Set-Cookie that makes the browser forget the session. */
export const clearCookie = (publicUrl: string) => cookieAttrs(publicUrl, '', 0);

function cookieValue(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq >= 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** The browser's session, when its cookie is well-formed, signed with this admin token, unexpired and not signed out. */
export async function readSession(rt: Runtime, req: IncomingMessage, now = Date.now()): Promise<Session | undefined> {
  const m = COOKIE_VALUE.exec(cookieValue(req, cookieName(rt.current.config.settings.public_url)) ?? '');
  if (!m) return undefined;
  const [, id, exp, given] = m as unknown as [string, string, string, string];
  if (!sameSecret(mac(rt.adminToken, `${id}.${exp}`), given)) return undefined;
  const expiresAt = Number(exp);
  if (expiresAt <= now) return undefined;
  const kept = await storeCall('ui_session', () => rt.store.kv.get(kvKey(id)));
  if (kept !== exp) return undefined;
  return session(rt.adminToken, id, expiresAt);
}

export async function endSession(rt: Runtime, s: Session): Promise<void> {
  await storeCall('ui_session', () => rt.store.kv.delete(kvKey(s.id)));
}

/**
 * A dashboard form: URL-encoded, each field at most once. A POST must carry the session's CSRF
 * token (a page of another site cannot read it) and, when the browser says where it comes
 * from, come from this origin.
 */
export async function readForm(rt: Runtime, req: IncomingMessage, s: Session | undefined): Promise<Map<string, string>> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') throw new CredproxyError('bad_request', 'the form must be sent as application/x-www-form-urlencoded');
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== 'null' && origin !== new URL(rt.current.config.settings.public_url).origin && !sameHost(origin, req)) {
    throw new CredproxyError('bad_request', 'this form was sent from another site; nothing was changed');
  }
  const body = await readBody(req, rt.current.config.settings.limits.admin_body_bytes);
  const form = new Map<string, string>();
  for (const [k, v] of new URLSearchParams(body.toString('utf8'))) {
    if (form.has(k)) throw new CredproxyError('bad_request', `the form field ${k} is given more than once`);
    form.set(k, v);
  }
  if (s && !sameSecret(form.get('csrf') ?? '', s.csrf)) {
    throw new CredproxyError('bad_request', 'the form is out of date or was not sent by this dashboard (CSRF token); nothing was changed — reload the page and try again');
  }
  return form;
}

/** An Origin naming the host the request came to (credproxy reached under another name than public_url). */
function sameHost(origin: string, req: IncomingMessage): boolean {
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}
