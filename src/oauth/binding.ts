import { createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/**
 * Binds a connect flow to the browser that started it (RFC 9700 §4.7, login CSRF): the connect
 * page sets a random nonce in an HttpOnly cookie, the button's form carries a token tied to
 * that nonce, and the OAuth state keeps only the nonce's hash. A link or an authorize URL
 * passed to someone else then ends at a refusal in their browser, not in their account being
 * stored under the link's entity.
 */

const NONCE = /^[A-Za-z0-9_-]{43}$/;

/** `__Host-` (Secure, Path=/, no Domain) where the browser supports it: no sibling host can plant or shadow it. */
export function cookieName(publicUrl: string): string {
  return isHttps(publicUrl) ? '__Host-credproxy-connect' : 'credproxy-connect';
}

const isHttps = (publicUrl: string) => publicUrl.startsWith('https:');

/** 256 random bits. */
export const newNonce = () => randomBytes(32).toString('base64url');

/**
 * The Set-Cookie value. Lax: sent on the provider's top-level redirect back and on the same-site
 * POST of the button, never on cross-site subrequests. It lives as long as a flow does.
 */
export function setCookie(publicUrl: string, nonce: string, maxAgeS: number): string {
  const attrs = [`${cookieName(publicUrl)}=${nonce}`, 'Path=/', `Max-Age=${maxAgeS}`, 'HttpOnly', 'SameSite=Lax'];
  if (isHttps(publicUrl)) attrs.push('Secure');
  return attrs.join('; ');
}

/** The browser's nonce, when it sent a well-formed one. */
export function readNonce(req: IncomingMessage, publicUrl: string): string | undefined {
  const name = cookieName(publicUrl);
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    const value = part.slice(eq + 1).trim();
    if (NONCE.test(value)) return value;
  }
  return undefined;
}

/** What the flow state keeps: the nonce itself never reaches the store. */
export const nonceHash = (nonce: string) => createHash('sha256').update(nonce).digest('base64url');

/** True when the browser's nonce is the one the state was bound to (constant time). */
export function nonceMatches(nonce: string | undefined, hash: string | undefined): boolean {
  if (nonce === undefined || hash === undefined) return false;
  return safeEqual(nonceHash(nonce), hash);
}

/** Derived from the admin token like the link key, with its own label: never the admin token itself. */
function formKey(adminToken: string): Buffer {
  return Buffer.from(hkdfSync('sha256', adminToken, 'credproxy', 'connect-form v1', 32));
}

/** The button's CSRF token: only a page served to the browser holding `nonce` for link `linkId` has it. */
export function formToken(adminToken: string, linkId: string, nonce: string): string {
  return createHmac('sha256', formKey(adminToken)).update(`${linkId}.${nonce}`).digest('base64url');
}

export function formTokenMatches(adminToken: string, linkId: string, nonce: string | undefined, given: string | undefined): boolean {
  if (nonce === undefined || !given) return false;
  return safeEqual(formToken(adminToken, linkId, nonce), given);
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
