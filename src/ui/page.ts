import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';

/**
 * The one way credproxy answers a browser with HTML: every page gets the same strict headers,
 * so a new page cannot forget them. Pages are static text (no script); the only inline style
 * is allowed by its hash, and forms may only post where the page says.
 */

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

// Seen in Chromium at desktop and phone widths (test/ui/connect-page.browser.test.ts): long
// entity ids and hosts wrap anywhere rather than push a phone screen sideways, and the one
// button looks like the thing to press (white on blue: contrast 6.7:1, WCAG AA).
const STYLE =
  'body{font:16px/1.5 system-ui,sans-serif;max-width:36em;margin:clamp(1.5em,6vh,4em) auto;padding:0 1em;' +
  'color:#222;background:#fff;overflow-wrap:anywhere}h1{line-height:1.2}' +
  'dt{font-weight:600}dd{margin:0 0 .5em}a{color:#1d4ed8}' +
  'button{font:inherit;padding:.5em 1.5em;cursor:pointer;max-width:100%;color:#fff;background:#1d4ed8;' +
  'border:0;border-radius:.375em}button:hover{background:#1e40af}' +
  'button:focus-visible{outline:3px solid #93c5fd;outline-offset:2px}' +
  // The connect forms: labels above full-width inputs (a phone's width), grey hints at 7.5:1,
  // the error in dark red on pale red (7.9:1), focus rings as on the button.
  'form{margin:1em 0}label{display:block;font-weight:600;margin-top:1em}.choice label{display:inline;font-weight:400}' +
  '.choice{margin:.5em 0}.choice input{width:1.1em;height:1.1em;vertical-align:middle}' +
  'input[type=text],input[type=password],textarea{display:block;font:inherit;width:100%;box-sizing:border-box;padding:.5em;' +
  'margin-top:.25em;border:1px solid #6b7280;border-radius:.25em;color:#222;background:#fff}' +
  'textarea{font-family:ui-monospace,monospace;font-size:.85em}input:focus-visible,textarea:focus-visible{outline:3px solid #93c5fd;outline-offset:1px}.hint{color:#4b5563;font-size:.9em;margin:.25em 0}' +
  'fieldset{border:1px solid #d1d5db;border-radius:.375em;padding:.5em 1em;margin:1em 0}legend{font-weight:600;padding:0 .25em}' +
  '.error{color:#991b1b;background:#fef2f2;border-left:4px solid #b91c1c;padding:.5em 1em}button{margin-top:1.25em}' +
  'code{overflow-wrap:anywhere}h2{font-size:1.2em}.logo{display:block;height:48px;width:auto;max-width:100%}';
const styleHash = (css: string) => `'sha256-${createHash('sha256').update(css).digest('base64')}'`;
const STYLE_HASH = styleHash(STYLE);

/**
 * Answers that may be framed by other origins (the connect pages, `connect.frame_ancestors`),
 * set by the router for the paths under /connect/ only: every other page (the dashboard, which
 * never takes this) keeps `frame-ancestors 'none'` and `X-Frame-Options: DENY`.
 */
const framing = new WeakMap<ServerResponse, readonly string[]>();

export function allowFraming(res: ServerResponse, ancestors: readonly string[]): void {
  if (ancestors.length > 0) framing.set(res, ancestors);
}

export interface PageOptions {
  status: number;
  title: string;
  /** already-escaped HTML for the body, below the title (build it with escapeHtml) */
  bodyHtml: string;
  /** already-escaped extra HTML in <head> (a refresh) */
  headHtml?: string;
  /** origins a form on the page may post to (browsers hold redirects after the post to it too) */
  formAction?: string[];
  /** origins images may come from (an integration's logo); none by default */
  imgSrc?: string[];
  headers?: Record<string, string | string[]>;
  /** a second stylesheet after the shared one (the dashboard's tables and forms), allowed by its own hash */
  style?: string;
}

export function sendHtml(res: ServerResponse, o: PageOptions): void {
  const body =
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(o.title)}</title>` +
    '<meta name="viewport" content="width=device-width, initial-scale=1">' +
    `<style>${STYLE}</style>${o.style ? `<style>${o.style}</style>` : ''}${o.headHtml ?? ''}</head><body><h1>${escapeHtml(o.title)}</h1>${o.bodyHtml}</body></html>`;
  const formAction = o.formAction?.length ? o.formAction.join(' ') : "'none'";
  const imgSrc = o.imgSrc?.length ? `; img-src ${o.imgSrc.join(' ')}` : '';
  const ancestors = framing.get(res);
  res.writeHead(o.status, {
    ...o.headers,
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'content-security-policy': `default-src 'none'; style-src ${o.style ? `${STYLE_HASH} ${styleHash(o.style)}` : STYLE_HASH}${imgSrc}; form-action ${formAction}; frame-ancestors ${ancestors ? ancestors.join(' ') : "'none'"}; base-uri 'none'`,
    // X-Frame-Options cannot name origins; where framing is allowed, CSP alone says by whom.
    ...(ancestors ? {} : { 'x-frame-options': 'DENY' }),
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
  });
  res.end(body);
}

/** A page with a title and one paragraph of text. */
export function sendTextPage(res: ServerResponse, status: number, title: string, text: string, headers: Record<string, string> = {}): void {
  sendHtml(res, { status, title, bodyHtml: `<p>${escapeHtml(text)}</p>`, headers });
}
