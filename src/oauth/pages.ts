import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendError, type CredproxyError } from '../errors.js';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

/** The small page a browser sees at the end of a connect flow; every text is escaped. */
export function sendPage(res: ServerResponse, status: number, title: string, text: string, headers: Record<string, string> = {}): void {
  const body =
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>` +
    '<meta name="viewport" content="width=device-width, initial-scale=1">' +
    '<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em;color:#222}</style>' +
    `</head><body><h1>${escapeHtml(title)}</h1><p>${escapeHtml(text)}</p></body></html>`;
  res.writeHead(status, {
    ...headers,
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'",
    'referrer-policy': 'no-referrer',
  });
  res.end(body);
}

/** Browsers get the error as a page, programs as the usual JSON; both carry X-Credproxy-Error. */
export function sendFlowError(req: IncomingMessage, res: ServerResponse, err: CredproxyError): void {
  if (/text\/html/.test(req.headers.accept ?? '')) {
    return sendPage(res, err.status, 'Connection not completed', err.message, { 'x-credproxy-error': err.code });
  }
  sendError(res, err);
}
