import { ServerResponse, type IncomingHttpHeaders, type IncomingMessage, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import { CredproxyError, isCredproxyError, sendRawError } from '../errors.js';
import type { Runtime } from '../runtime.js';
import { reportStoreFailure } from '../store/failure.js';
import { forward, upstreamError } from './forward.js';
import { logRequest, prepareRequest, upstreamLatency } from './handler.js';
import type { RequestInfo } from './types.js';
import { clientResponseHeaderList } from './headers.js';
import { scrubHeaderList, secretsOf } from './scrub.js';
import { relay } from './relay.js';
import { isProxyRequest, type TunnelContext } from './target.js';

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
  // One keep-alive connection may send any number of declined upgrades (issue 15 #7): its
  // socket gets this listener once, not once per request.
  const guarded = new WeakSet<Duplex>();
  const onError = (err: Error) => rt.log.debug({ err }, 'upgrade client socket error');
  return function handleUpgrade(server: Server, req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (!guarded.has(socket)) {
      guarded.add(socket);
      socket.on('error', onError);
    }
    if (!isWebSocketUpgrade(req)) {
      replayWithoutUpgrade(server, req, socket, head);
      return;
    }
    const tunnel = tunnelOf(socket);
    if (!tunnel && !isProxyRequest(req)) {
      sendRawError(socket, new CredproxyError('not_found', "credproxy's own API has no WebSocket endpoints"));
      return;
    }
    void relayWebSocket(rt, req, socket, head, tunnel);
  };
}

function replayWithoutUpgrade(server: Server, req: IncomingMessage, socket: Duplex, head: Buffer): void {
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
  const limits = rt.current.config.settings.limits;
  const res = answerOn(req, socket);
  let status: number;
  try {
    const up = await prepareRequest(rt, req, tunnel, info, { websocket: true });
    const scrub = up.integration?.scrub_responses ? secretsOf(up.injection) : undefined;
    // The same forward path as every other request: the integration's pool or the
    // egress-checked passthrough one, so an upgrade can reach nothing a plain request cannot.
    status = await forward(up.dispatcher, { origin: up.origin, path: up.path, method: req.method ?? 'GET', headers: up.headers, body: null }, res, {
      headersTimeout: limits.upstream_response_timeout_ms,
      onResponse: upstreamLatency(rt, info),
      scrub,
      upgrade: {
        protocol: 'websocket',
        onUpgrade: (_code, headers, upSocket) => {
          res.detachSocket(socket as Socket);
          socket.write(switchingProtocols(headers, scrub));
          if (head.length > 0) upSocket.write(head);
          relay(socket, upSocket);
        },
      },
    });
  } catch (err) {
    const e = isCredproxyError(err) ? err : upstreamError(err);
    status = e.status;
    reportStoreFailure(rt, e);
    res.detachSocket(socket as Socket);
    sendRawError(socket, e);
  }
  logRequest(rt, info, req.method, status, started);
}

/**
 * A ServerResponse on the handed-over socket, so that an upstream's refusal (401, 403, …)
 * goes back through forward.ts like any answer: hop-by-hop and X-Credproxy-Error dropped,
 * `scrub_responses` applied, and the connection closed after it.
 */
function answerOn(req: IncomingMessage, socket: Duplex): ServerResponse {
  const res = new ServerResponse(req);
  res.shouldKeepAlive = false;
  res.assignSocket(socket as Socket);
  res.once('finish', () => {
    res.detachSocket(socket as Socket);
    socket.end();
  });
  return res;
}

/** The 101 for the client: the upstream's headers filtered and scrubbed as any response's are, and the upgrade itself. */
function switchingProtocols(headers: IncomingHttpHeaders, scrub: readonly string[] | undefined): Buffer {
  let list = clientResponseHeaderList(headers);
  if (scrub && scrub.length > 0) list = scrubHeaderList(list, scrub);
  let text = 'HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: websocket\r\n';
  for (let i = 0; i < list.length; i += 2) text += `${list[i]}: ${list[i + 1]}\r\n`;
  return Buffer.from(`${text}\r\n`, 'latin1');
}
