import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import { CredproxyError, isCredproxyError } from '../errors.js';
import type { Runtime } from '../runtime.js';
import { upstreamError } from './forward.js';
import { logRequest, prepareRequest, type PreparedRequest, type RequestInfo } from './handler.js';
import { relay } from './relay.js';
import { rawCredproxyError, rawError } from './socket-answer.js';
import { isProxyRequest, type TunnelContext } from './target.js';

/** Response headers not passed on when an upgrade is refused: the answer is re-framed to end with the connection. */
const REFUSAL_DROP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'trailer']);

function tokens(value: string | undefined): string[] {
  return (value ?? '').split(',').map((t) => t.trim().toLowerCase()).filter(Boolean);
}

export function isWebSocketUpgrade(req: IncomingMessage): boolean {
  return req.method === 'GET' && tokens(req.headers.upgrade).includes('websocket');
}

/**
 * node hands every request with `Connection: upgrade` to the 'upgrade' event. WebSocket
 * upgrades are relayed with the credential injected on the upgrade request; any other
 * upgrade (Java's HttpClient asks for `Upgrade: h2c` on plain HTTP) is declined the way RFC
 * 9110 allows, by ignoring it: the request is put back on the connection without its
 * Upgrade headers and served as the ordinary HTTP/1.1 request it also is.
 */
export function createUpgradeHandler(rt: Runtime, tunnelOf: (socket: Duplex) => TunnelContext | undefined) {
  return function handleUpgrade(server: http.Server, req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', (err) => rt.log.debug({ err }, 'upgrade client socket error'));
    if (!isWebSocketUpgrade(req)) {
      replayWithoutUpgrade(server, req, socket, head);
      return;
    }
    const tunnel = tunnelOf(socket);
    if (!tunnel && !isProxyRequest(req)) {
      rawError(socket, 'not_found', "credproxy's own API has no WebSocket endpoints");
      return;
    }
    void relayWebSocket(rt, req, socket, head, tunnel);
  };
}

function replayWithoutUpgrade(server: http.Server, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  const lines = [`${req.method} ${req.url} HTTP/${req.httpVersion}`];
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (lower === 'upgrade' || lower === 'http2-settings') continue;
    let value = raw[i + 1]!;
    if (lower === 'connection') {
      value = value.split(',').map((t) => t.trim()).filter((t) => t && !['upgrade', 'http2-settings'].includes(t.toLowerCase())).join(', ');
      if (!value) continue;
    }
    lines.push(`${name}: ${value}`);
  }
  // node's parser read these bytes as latin1 and has validated them already.
  socket.unshift(Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), head]));
  server.emit('connection', socket);
}

async function relayWebSocket(rt: Runtime, req: IncomingMessage, socket: Duplex, head: Buffer, tunnel: TunnelContext | undefined): Promise<void> {
  const started = performance.now();
  const info: RequestInfo = { entity: undefined, integration: 'passthrough', host: '', path: '' };
  let status: number;
  try {
    const up = await prepareRequest(rt, req, tunnel, info, { websocket: true });
    status = await upgradeUpstream(rt, up, req, socket, head);
  } catch (err) {
    const e = isCredproxyError(err) ? err : upstreamError(err);
    status = e.status;
    rawCredproxyError(socket, e);
  }
  logRequest(rt, info, req.method, status, started);
}

function headerBlock(statusLine: string, raw: readonly string[], drop?: Set<string>, extra = ''): Buffer {
  let text = `${statusLine}\r\n`;
  for (let i = 0; i < raw.length; i += 2) {
    if (drop?.has(raw[i]!.toLowerCase())) continue;
    text += `${raw[i]}: ${raw[i + 1]}\r\n`;
  }
  return Buffer.from(`${text}${extra}\r\n`, 'latin1');
}

/**
 * Sends the upgrade request upstream (TLS verified against the same CAs as every other
 * upstream request) and, on 101, joins the two sockets. A refusal (401, 403, …) goes back to
 * the client as the upstream's own answer. Resolves with the upstream status.
 */
function upgradeUpstream(rt: Runtime, up: PreparedRequest, req: IncomingMessage, socket: Duplex, head: Buffer): Promise<number> {
  const url = new URL(up.origin);
  const secure = url.protocol === 'https:';
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const limits = rt.current.config.settings.limits;
  return new Promise<number>((resolve, reject) => {
    const upReq = (secure ? https : http).request({
      host,
      port: url.port === '' ? (secure ? 443 : 80) : Number(url.port),
      method: req.method,
      path: up.path,
      headers: [...up.headers, 'Connection', 'Upgrade', 'Upgrade', 'websocket'],
      agent: false,
      ...(secure ? { servername: isIP(host) ? undefined : host, ca: rt.tls.upstreamCa } : {}),
    });
    const timer = setTimeout(() => {
      upReq.destroy(new CredproxyError('upstream_timeout', 'the upstream did not answer the WebSocket upgrade in time'));
    }, limits.upstream_response_timeout_ms);
    const abandon = () => upReq.destroy();
    socket.once('close', abandon);
    const settle = () => {
      clearTimeout(timer);
      socket.off('close', abandon);
    };
    upReq.once('error', (err) => {
      settle();
      reject(err);
    });
    upReq.once('upgrade', (res, upSocket, upHead) => {
      settle();
      socket.write(headerBlock(`HTTP/1.1 101 ${res.statusMessage || 'Switching Protocols'}`, res.rawHeaders));
      if (upHead.length > 0) socket.write(upHead);
      if (head.length > 0) upSocket.write(head);
      relay(socket, upSocket);
      resolve(101);
    });
    upReq.once('response', (res) => {
      settle();
      const code = res.statusCode ?? 502;
      socket.write(headerBlock(`HTTP/1.1 ${code} ${res.statusMessage ?? ''}`, res.rawHeaders, REFUSAL_DROP, 'connection: close\r\n'));
      res.pipe(socket);
      res.once('error', () => socket.destroy());
      resolve(code);
    });
    upReq.end();
  });
}
