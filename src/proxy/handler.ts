import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { CredproxyError, isCredproxyError, sendError } from '../errors.js';
import { methodClass, statusClass } from '../metrics.js';
import type { Runtime } from '../runtime.js';
import { resolveCredential, type Injection } from './credential.js';
import { forward } from './forward.js';
import { injectQuery, upstreamRequestHeaders } from './headers.js';
import { identify } from './identify.js';
import { parseTarget, type Target } from './target.js';

/**
 * The request pipeline for absolute-form proxy requests, one step per file:
 * target → identify → match → credential → headers → forward. Any step may throw a
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
      let origin: string;
      let hostHeader: string;
      if (route) {
        integration = route.integration.name;
        if (!entity) {
          throw new CredproxyError('entity_required', `${target.hostname} belongs to integration "${integration}": name the entity with the ${settings.entity_header} header`);
        }
        injection = await resolveCredential(rt.store, route.integration, entity);
        ({ origin, hostHeader } = upstreamOrigin(target, route.integration.upstream));
      } else {
        if (settings.passthrough === 'deny') {
          throw new CredproxyError('host_denied', `${target.hostname} belongs to no integration and passthrough is denied`);
        }
        ({ origin, hostHeader } = upstreamOrigin(target, target.secure ? 'https' : 'http'));
      }

      const upstreamPath = injectQuery(target.url.pathname + target.url.search, injection?.query ?? []);
      const headers = upstreamRequestHeaders(req.rawHeaders, hostHeader, settings.entity_header, injection?.headers ?? []);
      const te = req.headers['transfer-encoding'];
      const cl = req.headers['content-length'];
      const body = te !== undefined || (cl !== undefined && cl !== '0') ? req : null;
      const sent = performance.now();
      const onResponse = () => rt.metrics.upstreamLatency.observe({ integration }, (performance.now() - sent) / 1000);
      status = await forward(
        rt.agent,
        { origin, path: upstreamPath, method: req.method ?? 'GET', headers, body },
        res,
        { headersTimeout: settings.limits.upstream_response_timeout_ms, signal: abort.signal, onResponse },
      );
    } catch (err) {
      const e = isCredproxyError(err) ? err : new CredproxyError('internal_error');
      if (!isCredproxyError(err)) rt.log.error({ err }, 'unexpected error in the proxy pipeline');
      status = e.status;
      sendError(res, e);
    } finally {
      res.off('close', onClose);
    }
    const ms = performance.now() - started;
    rt.metrics.requests.inc({ integration, method: methodClass(req.method), status: statusClass(status) });
    rt.metrics.upstreamSeconds.observe({ integration }, ms / 1000);
    rt.log.info({ entity, integration, method: req.method, host, path, status, ms: Math.round(ms * 10) / 10 }, 'proxied');
  };
}

/** Where the request goes: an integration's `upstream: https` upgrades plain http, so a credential never leaves in clear text. */
function upstreamOrigin(target: Target, scheme: 'http' | 'https'): { origin: string; hostHeader: string } {
  const name = target.hostname.includes(':') ? `[${target.hostname}]` : target.hostname;
  const hostHeader = target.port === undefined ? name : `${name}:${target.port}`;
  return { origin: `${scheme}://${hostHeader}`, hostHeader };
}
