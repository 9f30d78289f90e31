import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { IntegrationConfig } from '../config/types.js';
import { CredproxyError, isCredproxyError, sendError } from '../errors.js';
import type { Runtime } from '../runtime.js';
import { resolveCredential, type Injection } from './credential.js';
import { forward } from './forward.js';
import { injectQuery, upstreamRequestHeaders } from './headers.js';
import { identify } from './identify.js';
import { parseTarget, tunnelTarget, type Target, type TunnelContext } from './target.js';

/** What one request's log line says; filled in step by step, so a failure still logs what was known. */
export interface RequestInfo {
  entity: string | undefined;
  integration: string;
  host: string;
  path: string;
}

/** The upstream request the pipeline decided on, before a body or an upgrade is attached. */
export interface PreparedRequest {
  origin: string;
  path: string;
  headers: string[];
  /** the owning integration and what was injected; undefined for passthrough */
  integration: IntegrationConfig | undefined;
  injection: Injection | undefined;
}

/**
 * Steps target → identify → match → credential → headers, shared by plain requests and
 * WebSocket upgrades, whether they came in absolute form or inside a terminated CONNECT
 * tunnel (then `tunnel` gives the target and the proxy credentials). Throws CredproxyError.
 */
export async function prepareRequest(
  rt: Runtime,
  req: IncomingMessage,
  tunnel: TunnelContext | undefined,
  info: RequestInfo,
  opts: { websocket?: boolean } = {},
): Promise<PreparedRequest> {
  const { config, routes } = rt.current;
  const settings = config.settings;
  const target = tunnel ? tunnelTarget(tunnel, req.url ?? '') : parseTarget(req.url ?? '', opts);
  info.host = target.url.host;
  info.path = target.url.pathname;
  const proxyAuthorization = tunnel ? tunnel.proxyAuthorization : req.headers['proxy-authorization'];
  const entity = identify(req, settings.entity_header, proxyAuthorization).entity;
  info.entity = entity;
  const route = routes.match(target.hostname, target.port, target.url.pathname);

  let injection: Injection | undefined;
  let origin: string;
  let hostHeader: string;
  if (route) {
    info.integration = route.integration.name;
    if (!entity) {
      throw new CredproxyError('entity_required', `${target.hostname} belongs to integration "${info.integration}": name the entity with the ${settings.entity_header} header`);
    }
    injection = await resolveCredential(rt.store, route.integration, entity);
    ({ origin, hostHeader } = upstreamOrigin(target, route.integration.upstream));
  } else {
    if (settings.passthrough === 'deny') {
      throw new CredproxyError('host_denied', `${target.hostname} belongs to no integration and passthrough is denied`);
    }
    ({ origin, hostHeader } = upstreamOrigin(target, target.secure ? 'https' : 'http'));
  }

  const path = injectQuery(target.url.pathname + target.url.search, injection?.query ?? []);
  const headers = upstreamRequestHeaders(req.rawHeaders, hostHeader, settings.entity_header, injection?.headers ?? []);
  return { origin, path, headers, integration: route?.integration, injection };
}

/**
 * The request pipeline for proxied requests, one step per file:
 * target → identify → match → credential → headers → forward. Any step may throw a
 * CredproxyError; it becomes the documented answer and nothing is forwarded.
 */
export function createProxyHandler(rt: Runtime) {
  return async function handleProxyRequest(req: IncomingMessage, res: ServerResponse, tunnel?: TunnelContext): Promise<void> {
    const started = performance.now();
    const settings = rt.current.config.settings;
    const info: RequestInfo = { entity: undefined, integration: 'passthrough', host: '', path: '' };
    let status = 0;
    const abort = new AbortController();
    const onClose = () => {
      if (!res.writableFinished) abort.abort();
    };
    res.once('close', onClose);
    try {
      const up = await prepareRequest(rt, req, tunnel, info);
      const te = req.headers['transfer-encoding'];
      const cl = req.headers['content-length'];
      const body = te !== undefined || (cl !== undefined && cl !== '0') ? req : null;
      status = await forward(
        rt.agent,
        { origin: up.origin, path: up.path, headers: up.headers, method: req.method ?? 'GET', body },
        res,
        { headersTimeout: settings.limits.upstream_response_timeout_ms, signal: abort.signal },
      );
    } catch (err) {
      const e = isCredproxyError(err) ? err : new CredproxyError('internal_error');
      if (!isCredproxyError(err)) rt.log.error({ err }, 'unexpected error in the proxy pipeline');
      status = e.status;
      sendError(res, e);
    } finally {
      res.off('close', onClose);
    }
    logRequest(rt, info, req.method, status, started);
  };
}

/** One log line and the metrics for a finished request (or upgrade). */
export function logRequest(rt: Runtime, info: RequestInfo, method: string | undefined, status: number, started: number): void {
  const ms = performance.now() - started;
  const { entity, integration, host, path } = info;
  rt.metrics.requests.inc({ integration, method: method ?? '', status: `${Math.floor(status / 100)}xx` });
  rt.metrics.upstreamSeconds.observe({ integration }, ms / 1000);
  rt.log.info({ entity, integration, method, host, path, status, ms: Math.round(ms * 10) / 10 }, 'proxied');
}

/** Where the request goes: an integration's `upstream: https` upgrades plain http, so a credential never leaves in clear text. */
function upstreamOrigin(target: Target, scheme: 'http' | 'https'): { origin: string; hostHeader: string } {
  const name = target.hostname.includes(':') ? `[${target.hostname}]` : target.hostname;
  const hostHeader = target.port === undefined ? name : `${name}:${target.port}`;
  return { origin: `${scheme}://${hostHeader}`, hostHeader };
}
