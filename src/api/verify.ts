import { request } from 'undici';
import { renderHost } from '../config/host-template.js';
import type { LiveIntegration } from '../auth/scheme-set.js';
import type { VerifyConfig } from '../config/types.js';
import { isCredproxyError } from '../errors.js';
import { injectionFor, schemeOf } from '../proxy/credential.js';
import type { UpstreamRequest } from '../proxy/types.js';
import { injectQuery, upstreamRequestHeaders } from '../proxy/headers.js';
import { signUpstream } from '../proxy/sign.js';
import type { Runtime } from '../runtime.js';
import type { Connection } from '../store/types.js';

/** A verification may hold an admin PUT this long at most, whatever the upstream timeouts are. */
const VERIFY_TIMEOUT_MS = 10_000;

/**
 * What the admin answer says (`verification` in the PUT answer). `refused` is set when the
 * upstream's answer shows the credentials are wrong: the PUT is then refused and nothing is
 * stored. An answer that says nothing about the credentials (no answer, 5xx, 429, a token
 * that a refresh may cure) is reported with ok false, and the connection is stored.
 */
export interface Verification {
  ok: boolean;
  /** the upstream's status; null when it gave none */
  status: number | null;
  message: string;
  refused: boolean;
}

/** Statuses that are about the upstream, not about the credentials. */
const INCONCLUSIVE = new Set([408, 425, 429]);

const expected = (v: VerifyConfig, status: number) => (v.expect ? v.expect.includes(status) : status >= 200 && status < 300);

/**
 * Runs the integration's `verify` request with a connection that is about to be stored,
 * through the same steps as a proxied request: the connection's scheme and inject (or
 * signature), the integration's upstream scheme and pool (so `tls.upstream_ca` applies), and
 * a host the integration owns, filled from the connection's params for a host template. No
 * token is refreshed or fetched into the store on the way: the connection is not stored yet.
 * Messages name the configured path, never the request as sent (a key may sit in its query),
 * and never quote the upstream's body (it may echo the key).
 */
export async function verifyConnection(rt: Runtime, integration: LiveIntegration, connection: Connection): Promise<Verification | undefined> {
  const v = integration.verify;
  if (!v) return undefined;
  const settings = rt.current.config.settings;
  const hostname = v.host.template ? renderHost(v.host.host, connection.params) : v.host.host;
  if (hostname === undefined) return inconclusive(null, 'the params do not fill the verify host');
  const name = hostname.includes(':') ? `[${hostname}]` : hostname;
  const hostHeader = v.host.port === undefined ? name : `${name}:${v.host.port}`;
  const origin = `${integration.upstream}://${hostHeader}`;
  const what = `${v.method} ${origin}${v.path}`;

  // A token minted from the entity's previous credentials (jwt, jwt_bearer) would verify those instead.
  schemeOf(integration, connection)?.scheme.forget?.({ entity: connection.entity, integration, connection });
  let injection;
  try {
    injection = await injectionFor(integration, connection.entity, connection, { dispatcher: rt.agent });
  } catch (err) {
    if (!isCredproxyError(err)) throw err;
    return inconclusive(null, `${what} was not sent: ${err.message}`);
  }
  const raw = ['user-agent', 'credproxy-verify', 'accept', '*/*'];
  let up: UpstreamRequest = {
    origin,
    path: injectQuery(v.path, injection.query),
    method: v.method,
    headers: upstreamRequestHeaders(raw, hostHeader, settings.entity_header, injection.headers),
    body: null,
  };
  const timeout = Math.min(VERIFY_TIMEOUT_MS, settings.limits.upstream_response_timeout_ms);
  let status: number;
  try {
    if (injection.sign) up = await signUpstream(up, origin, injection.sign, 0);
    const res = await request(`${origin}${up.path}`, {
      method: up.method,
      headers: up.headers,
      dispatcher: rt.agent,
      headersTimeout: timeout,
      bodyTimeout: timeout,
    });
    status = res.statusCode;
    await res.body.dump({ limit: 65_536 }).catch(() => {});
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? (err instanceof Error ? err.message : String(err));
    return inconclusive(null, `${what} got no answer (${why})`);
  }
  if (expected(v, status)) return { ok: true, status, message: `${what} answered ${status}`, refused: false };
  const want = v.expect ? v.expect.join(', ') : '2xx';
  if (status >= 500 || INCONCLUSIVE.has(status)) return inconclusive(status, `${what} answered ${status} (expected ${want}), which says nothing about the credentials`);
  if (injection.refreshable && integration.refresh_on.includes(status)) {
    return inconclusive(status, `${what} answered ${status} (expected ${want}); the token will be refreshed on first use`);
  }
  // A minted token (jwt_bearer) from credentials that do not work must not stay cached.
  injection.forget?.();
  return { ok: false, status, message: `${what} answered ${status} (expected ${want}): the credentials do not work`, refused: true };
}

const inconclusive = (status: number | null, why: string): Verification => ({
  ok: false,
  status,
  message: `${why}; stored without verification`,
  refused: false,
});
