import http from 'node:http';
import type { Duplex } from 'node:stream';
import { ERRORS, type CredproxyError, type ErrorCode } from '../errors.js';

/**
 * The documented error answer (JSON body and X-Credproxy-Error) written straight to a
 * socket: for CONNECT and upgrade requests, and requests node could not even parse, which
 * have no ServerResponse. The connection is closed after it.
 */
export function rawError(socket: Duplex, code: ErrorCode, message: string, headers: Readonly<Record<string, string>> = {}): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const { status } = ERRORS[code];
  const body = JSON.stringify({ error: { code, message } });
  const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\n${extra}content-type: application/json; charset=utf-8\r\n` +
      `x-credproxy-error: ${code}\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

export function rawCredproxyError(socket: Duplex, err: CredproxyError): void {
  rawError(socket, err.code, err.message, err.headers);
}
