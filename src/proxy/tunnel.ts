import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { CredproxyError, isCredproxyError, sendRawError } from '../errors.js';
import type { Runtime } from '../runtime.js';
import { reportStoreFailure } from '../store/failure.js';
import { parseConnectTarget, type ConnectTarget } from './connect-target.js';
import { dialTcp, parseCidrs } from './egress.js';
import { upstreamError } from './forward.js';
import { connectPrincipal, verifyConnectToken, type Principal } from './principal.js';
import { relay } from './relay.js';
import type { TunnelContext } from './target.js';
import type { EntityToken } from '../tokens/entity-tokens.js';

export const ESTABLISHED = 'HTTP/1.1 200 Connection Established\r\n\r\n';

/** Terminates a tunnel to an integration host (see intercept.ts), presenting the leaf certificate `leafName`. */
export type Interceptor = (socket: Socket, head: Buffer, tunnel: Omit<TunnelContext, 'secure'>, leafName: string) => void;

/**
 * Whether an integration owns the CONNECT target. Routes keep "the default port" as
 * undefined, and a tunnel to :443 (https) or :80 (plain http, as undici's ProxyAgent sends
 * for http:// URLs) reaches exactly that.
 */
export function ownedByIntegration(rt: Runtime, target: ConnectTarget): boolean {
  const { routes } = rt.current;
  if (routes.owns(target.hostname, target.port)) return true;
  return (target.port === 443 || target.port === 80) && routes.owns(target.hostname, undefined);
}

/**
 * `CONNECT host:port`: integration hosts are terminated and their requests run through the
 * pipeline (when `tls.intercept` is on), and so is every tunnel of a client identified by an
 * entity token; every other host gets a byte-for-byte TCP tunnel, or 403 host_denied under
 * `passthrough: deny`. Errors before the tunnel opens are the
 * documented JSON answers.
 */
export function createConnectHandler(rt: Runtime, intercept: Interceptor, track: (socket: Socket) => void) {
  return function handleConnect(req: IncomingMessage, socket: Socket, head: Buffer): void {
    // node removed its own error handler when it handed the socket over.
    socket.on('error', (err) => rt.log.debug({ err }, 'CONNECT client socket error'));
    track(socket);
    // An entity token as the proxy password is checked in the store first; it stands in for a client key.
    const verifying = verifyConnectToken(rt, req);
    if (verifying === undefined) return admit(req, socket, head, undefined);
    verifying.then(
      (token) => admit(req, socket, head, token),
      (err: unknown) => {
        const e = isCredproxyError(err) ? err : new CredproxyError('internal_error');
        rt.log.info({ method: 'CONNECT', target: (req.url ?? '').slice(0, 200), status: e.status }, 'CONNECT refused');
        reportStoreFailure(rt, e);
        sendRawError(socket, e);
      },
    );
  };

  function admit(req: IncomingMessage, socket: Socket, head: Buffer, token: EntityToken | undefined): void {
    const tokenVerified = token !== undefined;
    let target: ConnectTarget;
    let principal: Principal;
    let proxyAuthorization: string | undefined;
    let release: () => void;
    try {
      // The same order as for plain requests: who is asking, then where to.
      ({ principal, caller: { proxyAuthorization } } = connectPrincipal(rt, req, token));
      target = parseConnectTarget(req.url ?? '');
      release = rt.tunnels.acquire(tunnelClient(principal, socket));
    } catch (err) {
      if (!isCredproxyError(err)) throw err;
      rt.log.info({ method: 'CONNECT', target: (req.url ?? '').slice(0, 200), status: err.status }, 'CONNECT refused');
      return sendRawError(socket, err);
    }
    rt.metrics.openTunnels.inc();
    socket.once('close', () => {
      release();
      rt.metrics.openTunnels.dec();
    });
    const owned = ownedByIntegration(rt, target);
    if (!owned && rt.current.config.settings.passthrough === 'deny') {
      rt.log.info({ method: 'CONNECT', host: target.hostname, port: target.port, status: 403 }, 'CONNECT refused');
      return sendRawError(socket, new CredproxyError('host_denied', `${target.hostname} belongs to no integration and passthrough is denied`));
    }
    // A client that holds an entity token may put it anywhere (an SDK's key variable, a URL).
    // Inside an opaque tunnel credproxy could not see it leave, so every tunnel of such a
    // client is terminated and its requests checked like plain ones; without a CA to do
    // that, the tunnel is refused rather than left blind.
    if ((owned || tokenVerified) && rt.tls.leaves) {
      const leafName = owned ? rt.current.routes.leafName(target.hostname) : target.hostname;
      // A new name costs a signature: capped per client, and refused here, before the 200 and any handshake.
      if (!rt.tls.leaves.has(leafName) && !rt.newLeaves.take(tunnelClient(principal, socket))) {
        const perSecond = rt.current.config.settings.limits.new_leaves_per_second;
        rt.log.info({ method: 'CONNECT', host: target.hostname, port: target.port, status: 429 }, 'CONNECT refused: new certificates over limits.new_leaves_per_second');
        return sendRawError(
          socket,
          new CredproxyError('rate_limited', `more than ${perSecond} new host names per second need a certificate; try again later`, { 'retry-after': '1' }),
        );
      }
      intercept(socket, head, { ...target, proxyAuthorization }, leafName);
      return;
    }
    if (tokenVerified) {
      rt.log.info({ method: 'CONNECT', host: target.hostname, port: target.port, status: 403 }, 'CONNECT refused');
      return sendRawError(
        socket,
        new CredproxyError('entity_denied', 'a client identified by an entity token gets only tunnels credproxy can inspect, and tls.intercept is off; nothing was forwarded'),
      );
    }
    void openTunnel(rt, socket, head, target, owned);
  }
}

/**
 * Whose share of `limits.max_tunnels_per_client` a tunnel counts against: the entity token
 * it came with, else the client key, else (no client authentication configured, so nothing
 * tells clients apart) the address it comes from.
 */
function tunnelClient(principal: Principal, socket: Socket): string {
  if (principal.token) return `token:${principal.token.id}`;
  if (principal.client !== undefined) return `client:${principal.client}`;
  return `address:${socket.remoteAddress ?? 'unknown'}`;
}

/**
 * A plain TCP tunnel: credproxy sees only bytes, and adds nothing to them. It dials through
 * egress.ts like every other way out: a passthrough target is checked against the egress
 * policy and the tunnel dials exactly the address that was checked (no second lookup); an
 * integration host (interception off) is trusted as configured.
 */
async function openTunnel(rt: Runtime, socket: Socket, head: Buffer, target: ConnectTarget, owned: boolean): Promise<void> {
  const started = Date.now();
  const settings = rt.current.config.settings;
  const gone = new AbortController();
  const abandon = () => gone.abort();
  socket.once('close', abandon);
  let upstream: Socket;
  try {
    upstream = await dialTcp(
      target.hostname,
      target.port,
      owned
        ? { chooser: 'operator', timeout: settings.limits.upstream_connect_timeout_ms }
        : { chooser: 'client', allowPrivate: () => parseCidrs(settings.egress.allow_private), timeout: settings.limits.upstream_connect_timeout_ms },
      gone.signal,
    );
  } catch (err) {
    socket.off('close', abandon);
    if (gone.signal.aborted) return;
    const e = isCredproxyError(err) ? err : upstreamError(err);
    const code = (err as NodeJS.ErrnoException).code;
    rt.log.info({ method: 'CONNECT', host: target.hostname, port: target.port, status: e.status, ...(code ? { err: code } : {}) }, isCredproxyError(err) ? 'CONNECT refused' : 'tunnel failed');
    return sendRawError(socket, e);
  }
  socket.off('close', abandon);
  if (gone.signal.aborted || socket.destroyed) return void upstream.destroy();
  socket.write(ESTABLISHED);
  if (head.length > 0) upstream.write(head);
  relay(socket, upstream, () => {
    rt.log.info(
      { method: 'CONNECT', host: target.hostname, port: target.port, mode: 'tunnel', sent: upstream.bytesWritten, received: upstream.bytesRead, ms: Date.now() - started },
      'tunnel closed',
    );
  });
}
