import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { CredproxyError, sendError, sendRawError } from './errors.js';
import { applyServerLimits, headerCountError, serverOptions } from './limits.js';
import { createApiHandler } from './api/router.js';
import { createProxyHandler } from './proxy/handler.js';
import { createInterceptor } from './proxy/intercept.js';
import { isProxyRequest, type TunnelContext } from './proxy/target.js';
import { createConnectHandler } from './proxy/tunnel.js';
import { createUpgradeHandler } from './proxy/upgrade.js';
import type { Runtime } from './runtime.js';

function onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (!socket.writable) return void socket.destroy();
  if (err.code === 'HPE_HEADER_OVERFLOW') return sendRawError(socket, new CredproxyError('headers_too_large', 'request headers too large'));
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return sendRawError(socket, new CredproxyError('bad_request', 'the request headers did not arrive in time'));
  sendRawError(socket, new CredproxyError('bad_request', `malformed request (${err.code ?? 'parse error'})`));
}

/** Sockets handed over by CONNECT and upgrades (node no longer tracks them) and the inner server, so that close() can end them. */
const openTunnels = new WeakMap<http.Server, { sockets: Set<Socket>; inner: http.Server }>();

/** Ends every tunnel and WebSocket of the server: its close() would otherwise wait for clients to hang up. */
export function closeTunnels(server: http.Server): void {
  const open = openTunnels.get(server);
  if (!open) return;
  for (const socket of open.sockets) socket.destroy();
  open.inner.close(() => undefined); // stops its timeout checks; it never listened, so the callback gets ERR_SERVER_NOT_RUNNING
}

/**
 * One node:http server for proxy traffic and credproxy's own API: absolute-form requests
 * go down the proxy pipeline, origin-form ones to the API, CONNECT to tunnel.ts. Requests
 * inside terminated tunnels reach the same pipeline through `inner`, a server that never
 * listens and gets its connections from intercept.ts.
 */
export function createServer(rt: Runtime): http.Server {
  const proxy = createProxyHandler(rt);
  const api = createApiHandler(rt);
  const tunnels = new WeakMap<Duplex, TunnelContext>();
  const limits = rt.current.config.settings.limits;
  const server = http.createServer(serverOptions(limits), (req: IncomingMessage, res: ServerResponse) => {
    const tooMany = headerCountError(req, limits);
    if (tooMany) return sendError(res, tooMany);
    void (isProxyRequest(req) ? proxy(req, res) : api(req, res));
  });
  const inner = http.createServer(serverOptions(limits), (req: IncomingMessage, res: ServerResponse) => {
    const tooMany = headerCountError(req, limits);
    if (tooMany) return sendError(res, tooMany);
    void proxy(req, res, tunnels.get(req.socket));
  });
  applyServerLimits(server, limits);
  inner.maxHeadersCount = server.maxHeadersCount;
  // node would answer an unknown Expect with a bare 417; keep every refusal in the documented format.
  const expectation = (_req: IncomingMessage, res: ServerResponse) =>
    sendError(res, new CredproxyError('bad_request', 'only Expect: 100-continue is supported'));
  server.on('checkExpectation', expectation);
  inner.on('checkExpectation', expectation);
  // node checks headersTimeout (slowloris) only on servers that emitted 'listening'.
  inner.emit('listening');
  const open = new Set<Socket>();
  openTunnels.set(server, { sockets: open, inner });
  const track = (socket: Socket) => {
    if (open.has(socket)) return; // a keep-alive connection's second upgrade (h2c): tracked already
    open.add(socket);
    socket.once('close', () => open.delete(socket));
  };

  const upgrade = createUpgradeHandler(rt, (socket) => tunnels.get(socket));
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    track(socket); // a WebSocket relayed from here is no longer node's to close
    upgrade(server, req, socket, head);
  });
  // Inside a tunnel the raw socket underneath is tracked already.
  inner.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => upgrade(inner, req, socket, head));
  server.on('clientError', onClientError);
  inner.on('clientError', onClientError);
  server.on('connect', createConnectHandler(rt, createInterceptor(rt, inner, tunnels), track));
  return server;
}
