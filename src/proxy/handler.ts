import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { CredproxyError, isCredproxyError, sendError } from '../errors.js';
import type { Runtime } from '../runtime.js';
import { resolveCredential, type Injection, type TemplateHost } from './credential.js';
import { markStale } from '../oauth/refresh.js';
import type { SchemeContext } from '../auth/types.js';
import { forward, type UpstreamRequest } from './forward.js';
import { injectQuery, upstreamRequestHeaders } from './headers.js';
import { identify } from './identify.js';
import { forwardWithReplay, prepareBody, type PreparedBody } from './replay.js';
import { signUpstream } from './sign.js';
import { parseTarget, type Target } from './target.js';

/** A token endpoint gets less time than an upstream: a request waits on it before anything is sent. */
const TOKEN_TIMEOUT_MS = 30_000;

/**
 * The request pipeline for absolute-form proxy requests, one step per file:
 * target → identify → match → credential → headers → forward (→ refresh → replay). Any step may throw a
 * CredproxyError; it becomes the documented answer and nothing is forwarded.
 */
export function createProxyHandler(rt: Runtime) {
  return async function handleProxyRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    const { config, routes } = rt.current;
    const settings = config.settings;
    let entity: string | undefined;
    let integration = 'passthrough';
    let host = '';
    let path = '';
    let status = 0;
    let refreshed = false;
    let replayed = false;
    const abort = new AbortController();
    const onClose = () => {
      if (!res.writableFinished) abort.abort();
    };
    res.once('close', onClose);
    try {
      const target = parseTarget(req.url ?? '');
      host = target.url.host;
      path = target.url.pathname;
      entity = identify(req, settings.entity_header).entity;
      const route = routes.match(target.hostname, target.port, target.url.pathname);

      let injection: Injection | undefined;
      let templateHost: TemplateHost | undefined;
      let origin: string;
      let hostHeader: string;
      const ctx: SchemeContext = { store: rt.store, dispatcher: rt.agent, log: rt.log, timeoutMs: Math.min(TOKEN_TIMEOUT_MS, settings.limits.upstream_response_timeout_ms) };
      if (route) {
        integration = route.integration.name;
        if (!entity) {
          throw new CredproxyError('entity_required', `${target.hostname} belongs to integration "${integration}": name the entity with the ${settings.entity_header} header`);
        }
        templateHost = route.hostParams ? { pattern: route.pattern, hostname: target.hostname } : undefined;
        injection = await resolveCredential(rt.store, route.integration, entity, { ctx, host: templateHost });
        ({ origin, hostHeader } = upstreamOrigin(target, route.integration.upstream));
      } else {
        if (settings.passthrough === 'deny') {
          throw new CredproxyError('host_denied', `${target.hostname} belongs to no integration and passthrough is denied`);
        }
        ({ origin, hostHeader } = upstreamOrigin(target, target.secure ? 'https' : 'http'));
      }

      // Only a request that a refresh could cure, or a signature must cover, is held in memory; everything else streams.
      const prepared: PreparedBody = injection?.refreshable || injection?.sign
        ? await prepareBody(req, settings.limits.replay_body_bytes)
        : { body: hasBody(req) ? req : null, replayable: false };
      const send = async (inj: Injection | undefined, holdBack?: (status: number) => boolean) => {
        let up: UpstreamRequest = {
          origin,
          path: injectQuery(target.url.pathname + target.url.search, inj?.query ?? []),
          method: req.method ?? 'GET',
          headers: upstreamRequestHeaders(req.rawHeaders, hostHeader, settings.entity_header, inj?.headers ?? []),
          body: prepared.body,
        };
        // Signed per send, so a replay carries a fresh date and nonce.
        if (inj?.sign) up = await signUpstream(up, origin, inj.sign, settings.limits.replay_body_bytes);
        return forward(rt.agent, up, res, { headersTimeout: settings.limits.upstream_response_timeout_ms, signal: abort.signal, holdBack });
      };
      const outcome = await forwardWithReplay({
        refreshOn: route?.integration.refresh_on ?? [],
        injection,
        replayable: prepared.replayable,
        send,
        refresh: (stale) => resolveCredential(rt.store, route!.integration, entity!, { ctx, stale, host: templateHost }),
        markStale: (token) => {
          injection?.forget?.();
          markStale(rt.store, token);
        },
      });
      ({ status, refreshed, replayed } = outcome);
      // A token other than the stored one was injected: it was refreshed before use.
      const stored = injection?.connection?.credentials.access_token;
      refreshed ||= stored !== undefined && injection?.token !== stored;
    } catch (err) {
      const e = isCredproxyError(err) ? err : new CredproxyError('internal_error');
      if (!isCredproxyError(err)) rt.log.error({ err }, 'unexpected error in the proxy pipeline');
      status = e.status;
      sendError(res, e);
    } finally {
      res.off('close', onClose);
    }
    const ms = performance.now() - started;
    rt.metrics.requests.inc({ integration, method: req.method ?? '', status: `${Math.floor(status / 100)}xx` });
    rt.metrics.upstreamSeconds.observe({ integration }, ms / 1000);
    rt.log.info({ entity, integration, method: req.method, host, path, status, refreshed, replayed, ms: Math.round(ms * 10) / 10 }, 'proxied');
  };
}

function hasBody(req: IncomingMessage): boolean {
  const cl = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (cl !== undefined && cl !== '0');
}

/** Where the request goes: an integration's `upstream: https` upgrades plain http, so a credential never leaves in clear text. */
function upstreamOrigin(target: Target, scheme: 'http' | 'https'): { origin: string; hostHeader: string } {
  const name = target.hostname.includes(':') ? `[${target.hostname}]` : target.hostname;
  const hostHeader = target.port === undefined ? name : `${name}:${target.port}`;
  return { origin: `${scheme}://${hostHeader}`, hostHeader };
}
