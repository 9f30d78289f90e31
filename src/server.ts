import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { CredproxyError, ERRORS, sendError, type ErrorCode } from './errors.js';
import { applyServerLimits, headerCountError, serverOptions } from './limits.js';
import { createApiHandler } from './api/router.js';
import { createProxyHandler } from './proxy/handler.js';
import { isProxyRequest } from './proxy/target.js';
import type { Runtime } from './runtime.js';

/** A bare error answer written to the socket, for requests node could not even parse. */
function rawError(socket: Socket, code: ErrorCode, message: string): void {
  const { status } = ERRORS[code];
  const body = JSON.stringify({ error: { code, message } });
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: application/json; charset=utf-8\r\n` +
      `x-credproxy-error: ${code}\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

/**
 * One node:http server for proxy traffic and credproxy's own API: absolute-form requests
 * go down the proxy pipeline, origin-form ones to the API.
 */
export function createServer(rt: Runtime): http.Server {
  const proxy = createProxyHandler(rt);
  const api = createApiHandler(rt);
  const limits = rt.current.config.settings.limits;
  const server = http.createServer(serverOptions(limits), (req: IncomingMessage, res: ServerResponse) => {
    const tooMany = headerCountError(req, limits);
    if (tooMany) return sendError(res, tooMany);
    void (isProxyRequest(req) ? proxy(req, res) : api(req, res));
  });
  applyServerLimits(server, limits);
  // node would answer an unknown Expect with a bare 417; keep every refusal in the documented format.
  server.on('checkExpectation', (_req: IncomingMessage, res: ServerResponse) => {
    sendError(res, new CredproxyError('bad_request', 'only Expect: 100-continue is supported'));
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (!socket.writable) return socket.destroy();
    if (err.code === 'HPE_HEADER_OVERFLOW') return rawError(socket, 'headers_too_large', 'request headers too large');
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return rawError(socket, 'bad_request', 'the request headers did not arrive in time');
    rawError(socket, 'bad_request', `malformed request (${err.code ?? 'parse error'})`);
  });
  server.on('connect', (_req: IncomingMessage, socket: Socket) => {
    rawError(socket, 'bad_request', 'CONNECT tunnelling is not supported by this version of credproxy yet; use http:// targets');
  });
  return server;
}
