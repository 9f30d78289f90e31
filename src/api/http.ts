import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { CredproxyError } from '../errors.js';

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

/** A request body up to `limit` bytes, 413 beyond (checked on the declared length first, then on what arrives). */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  if (Number(req.headers['content-length'] ?? 0) > limit) throw new CredproxyError('payload_too_large', `the body is over ${limit} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new CredproxyError('payload_too_large', `the body is over ${limit} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Reads a JSON object body up to `limit` bytes: 413 beyond, 400 when it is not a JSON object. */
export async function readJson(req: IncomingMessage, limit: number): Promise<Record<string, unknown>> {
  const body = await readBody(req, limit);
  if (body.length === 0) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw new CredproxyError('bad_request', 'the body is not valid JSON');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new CredproxyError('bad_request', 'the body must be a JSON object');
  }
  return parsed as Record<string, unknown>;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Constant-time check of `Authorization: Bearer <admin token>`. */
export function requireAdmin(req: IncomingMessage, adminToken: string): void {
  const h = req.headers.authorization ?? '';
  const given = /^bearer /i.test(h) ? h.slice(7).trim() : '';
  // Comparing digests keeps the compare constant-time whatever the lengths.
  if (!given || !timingSafeEqual(digest(given), digest(adminToken))) {
    throw new CredproxyError('unauthorized', 'this endpoint needs Authorization: Bearer <admin token>', { 'www-authenticate': 'Bearer realm="credproxy"' });
  }
}
