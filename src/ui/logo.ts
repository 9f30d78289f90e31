import type { IncomingMessage, ServerResponse } from 'node:http';
import type { LogoFile } from '../config/logo.js';
import { CredproxyError } from '../errors.js';
import type { Runtime } from '../runtime.js';

/**
 * GET /connect/{integration}/logo/{hash}: an integration's `display.logo_file`, served by
 * credproxy so the connect page needs `img-src 'self'` only. The URL carries the content's
 * hash, so it is cached for a year (`immutable`) and a changed file (after a reload) is a new
 * URL; an old hash answers 404. An SVG is a document that can hold scripts: it is sent with a
 * CSP that runs none (and `sandbox`) should someone open it directly rather than as an image.
 */

export const logoPath = (integration: string, logo: Pick<LogoFile, 'hash'>) => `/connect/${encodeURIComponent(integration)}/logo/${logo.hash}`;

export function sendLogo(rt: Runtime, _req: IncomingMessage, res: ServerResponse, [integration, hash]: string[]): void {
  const logo = rt.current.config.integrations.get(integration!)?.display?.logo;
  if (!logo || logo.hash !== hash) throw new CredproxyError('not_found', `integration "${integration}" has no logo ${hash}`);
  res.writeHead(200, {
    'content-type': logo.content_type,
    'content-length': logo.bytes.length,
    'cache-control': 'public, max-age=31536000, immutable',
    'content-security-policy': logo.content_type === 'image/svg+xml' ? "default-src 'none'; style-src 'unsafe-inline'; sandbox" : "default-src 'none'; sandbox",
    'x-content-type-options': 'nosniff',
    'cross-origin-resource-policy': 'same-origin',
  });
  res.end(logo.bytes);
}
