import http, { type IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import tls from 'node:tls';

export interface ConnectResult {
  status: number;
  headers: IncomingHttpHeaders;
  /** the open tunnel on 200; on any other answer the error body has been read and the socket is done */
  socket: Socket;
  body: Buffer;
}

/** Sends `CONNECT target` to the proxy over a real socket, as curl or undici would. */
export function connectVia(proxyPort: number, target: string, headers: Record<string, string> = {}): Promise<ConnectResult> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: proxyPort, method: 'CONNECT', path: target, headers: { host: target, ...headers }, agent: false });
    req.once('connect', (res, socket, head) => {
      const status = res.statusCode ?? 0;
      if (status === 200) {
        if (head.length > 0) socket.unshift(head);
        return resolve({ status, headers: res.headers, socket, body: Buffer.alloc(0) });
      }
      const chunks: Buffer[] = [head];
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.once('close', () => resolve({ status, headers: res.headers, socket, body: Buffer.concat(chunks) }));
    });
    req.once('error', reject);
    req.end();
  });
}

/**
 * TLS over an open tunnel, verified against `ca` only and for `host` (default 127.0.0.1, the
 * test upstreams' address); resolves once the handshake is done, or rejects as a strict
 * client would.
 */
export function tlsOver(socket: Socket, opts: { ca: string | string[]; host?: string; servername?: string }): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const host = opts.host ?? '127.0.0.1';
    const secure = tls.connect({
      socket,
      host,
      ca: opts.ca,
      servername: opts.servername,
      ALPNProtocols: ['http/1.1'],
      // The certificate must name the target host, whatever SNI was sent.
      checkServerIdentity: (_name, cert) => tls.checkServerIdentity(host, cert),
    });
    secure.once('secureConnect', () => resolve(secure));
    secure.once('error', reject);
  });
}

export interface RawResponse {
  status: number;
  /** lower-case names */
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * Writes `request` verbatim (it should say `Connection: close`) and reads the whole answer
 * until the server closes: for exchanges no HTTP client library would send as written.
 */
export function rawExchange(socket: Socket | tls.TLSSocket, request: string | Buffer): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.once('error', reject);
    socket.once('end', () => {
      const all = Buffer.concat(chunks);
      const split = all.indexOf('\r\n\r\n');
      if (split === -1) return reject(new Error(`no complete response: ${JSON.stringify(all.toString('latin1'))}`));
      const [statusLine = '', ...lines] = all.subarray(0, split).toString('latin1').split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines) {
        const c = l.indexOf(':');
        headers[l.slice(0, c).trim().toLowerCase()] = l.slice(c + 1).trim();
      }
      let body: Buffer = all.subarray(split + 4);
      if (headers['transfer-encoding'] === 'chunked') body = dechunk(body);
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body });
    });
    socket.write(request);
  });
}

function dechunk(buf: Buffer): Buffer {
  const out: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = buf.indexOf('\r\n', at);
    const size = parseInt(buf.subarray(at, eol).toString('latin1'), 16);
    if (!size) return Buffer.concat(out);
    out.push(buf.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}
