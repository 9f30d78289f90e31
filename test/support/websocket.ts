import { createHash, randomBytes } from 'node:crypto';
import http, { type IncomingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { Upstream } from './servers.js';

/** A `ws` echo server on an upstream, remembering the headers of every upgrade request. */
export function attachEcho(up: Upstream & { server: http.Server }, opts: { requireAuthorization?: string } = {}) {
  const upgrades: IncomingHttpHeaders[] = [];
  const wss = new WebSocketServer({
    server: up.server,
    verifyClient: (info, cb) => {
      upgrades.push(info.req.headers);
      if (opts.requireAuthorization && info.req.headers.authorization !== opts.requireAuthorization) return cb(false, 401, 'Unauthorized');
      cb(true);
    },
  });
  wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
  return { upgrades, close: () => new Promise<void>((r) => wss.close(() => r())) };
}

/**
 * The client side of RFC 6455 for a socket whose handshake the test did itself (no client
 * library sends an absolute-form ws:// request line): one masked text frame out, one
 * unmasked frame back. Small messages only (< 126 bytes).
 */
export function handshakeKey(): { key: string; accept: string } {
  const key = randomBytes(16).toString('base64');
  return { key, accept: createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64') };
}

export function sendText(socket: Duplex, text: string): void {
  const payload = Buffer.from(text);
  const mask = randomBytes(4);
  const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
  socket.write(Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]));
}

export function readText(socket: Duplex, head: Buffer = Buffer.alloc(0)): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = head;
    const check = () => {
      if (buf.length < 2) return;
      const len = buf[1]! & 0x7f;
      if (buf.length < 2 + len) return;
      socket.off('data', onData);
      resolve(buf.subarray(2, 2 + len).toString());
    };
    const onData = (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      check();
    };
    socket.on('data', onData);
    socket.once('error', reject);
    check();
  });
}
