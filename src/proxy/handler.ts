import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { performance } from 'node:perf_hooks';
import type { LiveIntegration } from '../auth/scheme-set.js';
import type { SchemeContext } from '../auth/types.js';
import type { IntegrationConfig, Settings } from '../config/types.js';
import { audit, markBytes, type ByteMark } from '../audit/record.js';
import { CredproxyError, isCredproxyError, sendError } from '../errors.js';
import { logRequestLine } from '../log.js';
import { methodClass, statusClass } from '../metrics.js';
import { markStale } from '../oauth/refresh.js';
import { reportStoreFailure } from '../store/failure.js';
import type { Runtime } from '../runtime.js';
import { resolveCredential, type TemplateHost } from './credential.js';
import { forward } from './forward.js';
import { injectQuery, upstreamRequestHeaders } from './headers.js';
import { refuseDotSegments } from './dot-segments.js';
import { authenticate, resolvePrincipal, type Caller, type Outgoing, type Principal } from './principal.js';
import { checkRate } from './rate-limit.js';
import { secretsOf } from './scrub.js';
import { guardBody, hasBody } from './body-guard.js';
import { forwardWithReplay, prepareBody, type PreparedBody, type ReplayPlan } from './replay.js';
import { signUpstream } from './sign.js';
import type { Injection, RequestInfo, UpstreamRequest } from './types.js';
import { parseTarget, tunnelTarget, type Target, type TunnelContext } from './target.js';

/** A token endpoint gets less time than an upstream: a request waits on it before anything is sent. */
const TOKEN_TIMEOUT_MS = 30_000;

/** A scrubbed response must be readable: the upstream is asked not to compress it. */
const IDENTITY: [string, string, string] = ['accept-encoding', 'accept-encoding', 'identity'];

/** The upstream request the pipeline decided on, before a body or an upgrade is attached. */
export interface PreparedRequest {
  origin: string;
  path: string;
  headers: string[];
  /** the owning integration and what was injected; undefined for passthrough */
  integration: IntegrationConfig | undefined;
  /** integrations' own pool, or the egress-checked one for passthrough */
  dispatcher: Dispatcher;
  injection: Injection | undefined;
  /** path and headers again for another injection (a replay after a refresh) */
  withInjection(injection: Injection | undefined): { path: string; headers: string[] };
  /** a newer credential than `stale`: refreshes unless someone already did */
  refresh(stale: string | undefined): Promise<Injection>;
}

/**
 * Steps authenticate → target → match → principal → credential → headers, shared by plain requests and
 * WebSocket upgrades, whether they came in absolute form or inside a terminated CONNECT
 * tunnel (then `tunnel` gives the target and the proxy credentials). Throws (or rejects
 * with) CredproxyError. A step that has its answer at hand (no entity token to look up, no
 * rate limit, a cached connection and a fresh token) gives it without a promise, so the
 * common request passes the whole pipeline synchronously; any step may wait instead. The
 * next step is called directly when a value is at hand and through `.then` only when it is
 * not, so the synchronous path makes no closure for it.
 */
export function prepareRequest(
  rt: Runtime,
  req: IncomingMessage,
  tunnel: TunnelContext | undefined,
  info: RequestInfo,
  opts: { websocket?: boolean } = {},
): PreparedRequest | Promise<PreparedRequest> {
  const caller = authenticate(rt, req, tunnel);
  return caller instanceof Promise ? caller.then((c) => afterCaller(rt, req, tunnel, info, opts, c)) : afterCaller(rt, req, tunnel, info, opts, caller);
}

/** target → match → principal, once the caller is known. */
function afterCaller(rt: Runtime, req: IncomingMessage, tunnel: TunnelContext | undefined, info: RequestInfo, opts: { websocket?: boolean }, caller: Caller): PreparedRequest | Promise<PreparedRequest> {
  info.client = caller.client;
  const target = tunnel ? tunnelTarget(tunnel, req.url ?? '') : parseTarget(req.url ?? '', opts);
  info.host = target.url.host;
  info.path = target.url.pathname;
  const { routes } = rt.current;
  const route = routes.match(target.hostname, target.port, target.url.pathname);
  // On a host an integration owns (on any path), a dot segment in any spelling could lead the
  // upstream outside the path prefix the credential is for (`/v1/..;/admin`): refused.
  if (route || routes.owns(target.hostname, target.port) || (target.port !== undefined && routes.owns(target.hostname, undefined))) {
    refuseDotSegments(req.url ?? '', target.hostname);
  }
  const principal = resolvePrincipal(rt, req, caller, {
    integration: route?.integration,
    pathWithSearch: target.url.pathname + target.url.search,
    hostname: target.hostname,
    inTunnel: tunnel !== undefined,
    info,
  });
  return principal instanceof Promise ? principal.then((resolved) => afterPrincipal(rt, target, route, resolved)) : afterPrincipal(rt, target, route, principal);
}

type Route = NonNullable<ReturnType<Runtime['current']['routes']['match']>>;

/** credential → headers, once the principal is known. */
function afterPrincipal(rt: Runtime, target: Target, route: Route | undefined, resolved: { principal: Principal; outgoing: Outgoing }): PreparedRequest | Promise<PreparedRequest> {
  const settings = rt.current.config.settings;
  const { principal, outgoing } = resolved;
  if (!route) {
    if (settings.passthrough === 'deny') {
      throw new CredproxyError('host_denied', `${target.hostname} belongs to no integration and passthrough is denied`);
    }
    return new Prepared(rt, upstreamOrigin(target, target.secure ? 'https' : 'http'), outgoing, undefined, undefined, undefined);
  }
  const ctx: SchemeContext = {
    store: rt.store,
    dispatcher: rt.agent,
    log: rt.log,
    timeoutMs: Math.min(TOKEN_TIMEOUT_MS, settings.limits.upstream_response_timeout_ms),
    events: rt.events,
    metrics: rt.metrics,
    refresh: rt.refresh,
    writeBack: rt.writeBack,
  };
  // A host template (`{{tenant}}.example.com`) matched: the connection's params must produce exactly this host.
  const templateHost: TemplateHost | undefined = route.hostParams ? { pattern: route.pattern, hostname: target.hostname } : undefined;
  // resolvePrincipal made sure an integration's request names its entity.
  const source: CredentialSource = { integration: route.integration, entity: principal.entity!, label: principal.label, ctx, host: templateHost };
  const origin = upstreamOrigin(target, route.integration.upstream);
  const limited = checkRate(rt.store.rateLimit, settings, route.integration, source.entity);
  return limited ? limited.then(() => withCredential(rt, origin, outgoing, source)) : withCredential(rt, origin, outgoing, source);
}

/** Where an integration's credential comes from, for the first send and for a refresh. */
interface CredentialSource {
  integration: LiveIntegration;
  entity: string;
  label: string | undefined;
  ctx: SchemeContext;
  host: TemplateHost | undefined;
}

function withCredential(rt: Runtime, origin: UpstreamOrigin, outgoing: Outgoing, source: CredentialSource): PreparedRequest | Promise<PreparedRequest> {
  const injection = resolveCredential(rt.store, source.integration, source.entity, { ctx: source.ctx, host: source.host, label: source.label });
  return injection instanceof Promise
    ? injection.then((inj) => new Prepared(rt, origin, outgoing, source.integration, inj, source))
    : new Prepared(rt, origin, outgoing, source.integration, injection, source);
}

type UpstreamOrigin = { origin: string; hostHeader: string };

/**
 * The request as it goes upstream: origin, path and headers with the injection applied. A
 * class rather than an object of closures: one allocation per request, and `refresh` and
 * `withInjection` need only what it holds.
 */
class Prepared implements PreparedRequest {
  readonly origin: string;
  readonly path: string;
  readonly headers: string[];
  readonly dispatcher: Dispatcher;
  private readonly hostHeader: string;
  private readonly entityHeader: string;

  constructor(
    rt: Runtime,
    origin: UpstreamOrigin,
    private readonly outgoing: Outgoing,
    readonly integration: IntegrationConfig | undefined,
    readonly injection: Injection | undefined,
    /** undefined for passthrough, which has no credential to refresh */
    private readonly source: CredentialSource | undefined,
  ) {
    this.origin = origin.origin;
    this.hostHeader = origin.hostHeader;
    this.entityHeader = rt.current.config.settings.entity_header;
    this.dispatcher = integration ? rt.agent : rt.passthrough;
    const first = this.withInjection(injection);
    this.path = first.path;
    this.headers = first.headers;
  }

  withInjection(inj: Injection | undefined): { path: string; headers: string[] } {
    const injected = inj?.headers ?? [];
    return {
      path: injectQuery(this.outgoing.pathWithSearch, inj?.query ?? []),
      headers: upstreamRequestHeaders(this.outgoing.rawHeaders, this.hostHeader, this.entityHeader, this.integration?.scrub_responses ? [...injected, IDENTITY] : injected),
    };
  }

  /** A newer credential than `stale`: refreshes unless someone already did. */
  async refresh(stale: string | undefined): Promise<Injection> {
    const source = this.source;
    if (!source) throw new CredproxyError('internal_error', 'a passthrough request has no credential to refresh');
    return resolveCredential(source.ctx.store, source.integration, source.entity, { ctx: source.ctx, stale, host: source.host, label: source.label });
  }
}

/**
 * The request pipeline for proxied requests, one step per file:
 * principal (who calls: client key or entity token) → target → match → principal (for which
 * entity and connection label) → credential → headers → forward (→ refresh → replay). Any step
 * may throw a CredproxyError; it becomes the documented answer and nothing is forwarded.
 */
export function createProxyHandler(rt: Runtime) {
  return async function handleProxyRequest(req: IncomingMessage, res: ServerResponse, tunnel?: TunnelContext): Promise<void> {
    const started = performance.now();
    // The byte counters are for the audit record only: not read when it is off (a request in
    // flight when a reload turns it on is recorded with bytes_out 0 and its declared bytes_in).
    const mark = rt.audit.enabled ? markBytes(req) : undefined;
    const settings = rt.current.config.settings;
    const info: RequestInfo = { entity: undefined, integration: 'passthrough', host: '', path: '' };
    let status = 0;
    const { limits } = settings;
    // A body that stops arriving is ended (408) instead of holding its buffer and connection for ever.
    const idle = guardBody(req, res, limits.body_idle_ms);
    let body: PreparedBody | undefined;
    try {
      const pending = prepareRequest(rt, req, tunnel, info);
      const prepared = pending instanceof Promise ? await pending : pending;
      const stalled = idle();
      if (stalled) throw stalled;
      const { injection } = prepared;
      // Only a request that a refresh could cure, or a signature must cover, is held in memory; everything else streams.
      body =
        injection?.refreshable || injection?.sign
          ? await prepareBody(req, limits.replay_body_bytes, rt.replayBudget)
          : { body: hasBody(req) ? req : null, replayable: false };
      if (body.overBudget) {
        rt.metrics.replayUnbuffered.inc({ integration: info.integration });
        rt.log.warn({ integration: info.integration, entity: info.entity, replay_budget_bytes: limits.replay_budget_bytes }, 'the replay budget is spent: this body streams unbuffered and will not be replayed or signed');
      }
      const outcome = await forwardWithReplay(new Exchange(rt, req, res, prepared, body, info, limits));
      status = outcome.status;
      info.replayed = outcome.replayed;
      if (outcome.replayed) rt.metrics.replays.inc({ integration: info.integration });
      // A token other than the stored one was injected: it was refreshed before use.
      const stored = injection?.connection?.credentials.access_token;
      info.refreshed = outcome.refreshed || (stored !== undefined && injection?.token !== stored);
    } catch (err) {
      // Whatever a step made of the idle body's end (undici's abort, a signer's read), it is the 408.
      const stalled = idle();
      const e = stalled ?? (isCredproxyError(err) ? err : new CredproxyError('internal_error'));
      if (!stalled && !isCredproxyError(err)) rt.log.error({ err }, 'unexpected error in the proxy pipeline');
      status = e.status;
      reportStoreFailure(rt, e);
      sendError(res, e);
    } finally {
      body?.release?.();
    }
    logRequest(rt, info, req.method, status, started, mark && { req, res, mark });
  };
}

/**
 * A prepared request on its way: what forwardWithReplay sends, refreshes and marks stale.
 * A class for the reason Prepared is one: `send`, `refresh` and `markStale` are methods,
 * not closures made for every request.
 */
class Exchange implements ReplayPlan {
  readonly refreshOn: readonly number[];
  readonly injection: Injection | undefined;
  readonly replayable: boolean;

  constructor(
    private readonly rt: Runtime,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly prepared: PreparedRequest,
    private readonly body: PreparedBody,
    private readonly info: RequestInfo,
    /** the limits of the config the request started under */
    private readonly limits: Settings['limits'],
  ) {
    this.refreshOn = prepared.integration?.refresh_on ?? [];
    this.injection = prepared.injection;
    this.replayable = body.replayable;
  }

  send(inj: Injection | undefined, holdBack?: (status: number) => boolean): Promise<number> {
    const prepared = this.prepared;
    // The first send's path and headers were made with the request (prepareRequest).
    const { path, headers } = inj === prepared.injection ? prepared : prepared.withInjection(inj);
    const body = this.body.body;
    const up: UpstreamRequest = { origin: prepared.origin, path, headers, method: this.req.method ?? 'GET', body };
    if (!inj?.sign) return this.relay(up, inj, holdBack);
    // Signed per send, so a replay carries a fresh date and nonce. A body that was not
    // buffered (too large, or over the replay budget) is not read into memory again here.
    const limit = body === null || Buffer.isBuffer(body) ? this.limits.replay_body_bytes : 0;
    return signUpstream(up, prepared.origin, inj.sign, limit).then((signed) => this.relay(signed, inj, holdBack));
  }

  refresh(stale: string | undefined): Promise<Injection> {
    return this.prepared.refresh(stale);
  }

  markStale(token: string | undefined): void {
    this.injection?.forget?.();
    markStale(this.rt.refresh, token);
  }

  private relay(up: UpstreamRequest, inj: Injection | undefined, holdBack: ((status: number) => boolean) | undefined): Promise<number> {
    const onResponse = upstreamLatency(this.rt, this.info);
    const redact = secretsOf(inj);
    const scrub = this.prepared.integration?.scrub_responses ? redact : undefined;
    return forward(this.prepared.dispatcher, up, this.res, { headersTimeout: this.limits.upstream_response_timeout_ms, holdBack, onResponse, scrub, redact });
  }
}

/**
 * The audit record, the metrics and the log line of a finished request (or upgrade). Each
 * can be turned off (audit.enabled, metrics.requests, log.level: warn); the audit record
 * and the metrics check one boolean before they build anything.
 */
export function logRequest(
  rt: Runtime,
  info: RequestInfo,
  method: string | undefined,
  status: number,
  started: number,
  bytes?: { req: IncomingMessage; res: ServerResponse; mark: ByteMark },
): void {
  const ms = performance.now() - started;
  audit(rt, info, method, status, ms, bytes?.req, bytes?.mark, bytes?.res);
  const { client, entity, label, integration, host, path, refreshed = false, replayed = false } = info;
  const metrics = rt.metrics;
  if (metrics.requestsOn) {
    metrics.requests.inc({ integration, method: methodClass(method), status: statusClass(status) });
    metrics.upstreamSeconds.observe({ integration }, ms / 1000);
  }
  logRequestLine(rt.log, { client, entity, label, integration, method, host, path, status, refreshed, replayed, ms: Math.round(ms * 10) / 10 }, 'proxied');
}

/**
 * forward()'s `onResponse` for a request sent now: the upstream latency metric when the
 * response headers arrive. With `metrics.requests: false` there is nothing to observe, and
 * no closure is made for it.
 */
export function upstreamLatency(rt: Runtime, info: RequestInfo): (() => void) | undefined {
  if (!rt.metrics.requestsOn) return undefined;
  const sent = performance.now();
  return () => rt.metrics.upstreamLatency.observe({ integration: info.integration }, (performance.now() - sent) / 1000);
}

/** Where the request goes: an integration's `upstream: https` upgrades plain http, so a credential never leaves in clear text. */
function upstreamOrigin(target: Target, scheme: 'http' | 'https'): UpstreamOrigin {
  const name = target.hostname.includes(':') ? `[${target.hostname}]` : target.hostname;
  const hostHeader = target.port === undefined ? name : `${name}:${target.port}`;
  return { origin: `${scheme}://${hostHeader}`, hostHeader };
}
