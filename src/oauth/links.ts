import { hkdfSync, randomBytes } from 'node:crypto';
import { errors, jwtVerify, SignJWT } from 'jose';
import { CredproxyError } from '../errors.js';
import { storeCall, type StoreOp } from '../store/failure.js';
import type { KeyValue } from '../store/types.js';

/** Connect links and OAuth state live this long (DESIGN: 10 minutes). */
export const FLOW_TTL_MS = 10 * 60 * 1000;
const AUDIENCE = 'credproxy:connect';

/** What a connect link stands for; kept server-side under the link's id, taken once. */
export interface LinkRecord {
  entity: string;
  integration: string;
  /** the labelled connection the flow creates; absent for the default one */
  label?: string;
  params: Record<string, string>;
  redirect_to?: string;
  /** scopes the link asks for instead of the integration's default ones */
  scopes?: string[];
  /** the one scheme the link offers; absent: every scheme the page can connect */
  scheme?: string;
  /** the link gave no params: the page asks the user for them */
  ask_params?: boolean;
}

/**
 * The link signing key, derived from the admin token: every instance of a deployment shares
 * it without a new setting, and it is never the admin token itself.
 */
function linkKey(adminToken: string): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', adminToken, 'credproxy', 'connect-link v1', 32));
}

/** Signs a single-use connect link token (HS256, 10 minutes) and records it in the store. */
export async function createLink(kv: KeyValue, adminToken: string, record: LinkRecord, now = Date.now()): Promise<{ token: string; expiresAt: number }> {
  const id = randomBytes(18).toString('base64url');
  const expiresAt = now + FLOW_TTL_MS;
  await kvCall(() => kv.set(`link:${id}`, JSON.stringify(record), FLOW_TTL_MS));
  const token = await new SignJWT({ int: record.integration })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(record.entity)
    .setJti(id)
    .setAudience(AUDIENCE)
    .setIssuedAt(Math.floor(now / 1000))
    .setExpirationTime(Math.floor(expiresAt / 1000))
    .sign(linkKey(adminToken));
  return { token, expiresAt };
}

/** Verifies a link token for `integration`: its id, or a 400 for a forged, tampered or expired one. */
async function verifyLink(adminToken: string, token: string, integration: string): Promise<string> {
  let id: string | undefined;
  try {
    const { payload } = await jwtVerify(token, linkKey(adminToken), { audience: AUDIENCE, algorithms: ['HS256'] });
    if (payload.int !== integration) throw new CredproxyError('bad_request', `this connect link is for another integration than "${integration}"`);
    id = payload.jti;
  } catch (err) {
    if (err instanceof CredproxyError) throw err;
    const why = err instanceof errors.JWTExpired ? 'has expired' : 'is not valid';
    throw new CredproxyError('bad_request', `this connect link ${why}; ask for a new one`);
  }
  if (id === undefined) throw new CredproxyError('bad_request', 'this connect link is not valid; ask for a new one');
  return id;
}

const USED = 'this connect link was already used or has expired; ask for a new one';

/**
 * Verifies a link and reads it without consuming it: opening the link (a GET, which mail
 * scanners and chat previews do too) only shows the connect page.
 */
export async function peekLink(kv: KeyValue, adminToken: string, token: string, integration: string): Promise<{ id: string; record: LinkRecord }> {
  const id = await verifyLink(adminToken, token, integration);
  const raw = await kvCall(() => kv.get(`link:${id}`));
  if (raw === undefined) throw new CredproxyError('bad_request', USED);
  return { id, record: JSON.parse(raw) as LinkRecord };
}

/**
 * Verifies a link token for `integration` and consumes it: a second use of the same link,
 * like a forged or expired one, is a 400. `check` runs on the verified id before anything is
 * consumed, so a refused request leaves the link usable.
 */
export async function takeLink(
  kv: KeyValue,
  adminToken: string,
  token: string,
  integration: string,
  check: (id: string) => void = () => {},
): Promise<{ id: string; record: LinkRecord }> {
  const id = await verifyLink(adminToken, token, integration);
  check(id);
  const raw = await kvCall(() => kv.take(`link:${id}`));
  if (raw === undefined) throw new CredproxyError('bad_request', USED);
  return { id, record: JSON.parse(raw) as LinkRecord };
}

/** Short-lived records live in the store too: its failure is a 503, never a 500. */
export const kvCall = <T>(fn: () => Promise<T>, op: StoreOp = 'link'): Promise<T> => storeCall(op, fn);
