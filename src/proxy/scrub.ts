import { Transform, type TransformCallback } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import type { Injection } from './types.js';

/** What an echoed secret becomes. */
export const SCRUBBED = '[credproxy:scrubbed]';
const PLACEHOLDER = Buffer.from(SCRUBBED);
/** Shorter values (a `Bearer ` prefix, a region name) are not secrets worth a search and would mangle bodies. */
const MIN_SECRET = 8;

/** The injected secrets of one request: header and query values, the token, the connection's credential fields. */
export function secretsOf(injection: Injection | undefined): string[] {
  if (!injection) return [];
  // The rendered arrays are shared while the connection and its token stay the same (credential.ts).
  const hit = secretsSeen.get(injection.headers);
  if (hit && hit.query === injection.query && hit.token === injection.token && hit.credentials === injection.connection?.credentials) return hit.secrets;
  const secrets = allSecrets(injection);
  secretsSeen.set(injection.headers, { query: injection.query, token: injection.token, credentials: injection.connection?.credentials, secrets });
  return secrets;
}

/** secretsOf's last answer per injected header list, and what else it was made from. */
const secretsSeen = new WeakMap<Injection['headers'], { query: Injection['query']; token: string | undefined; credentials: unknown; secrets: string[] }>();

function allSecrets(injection: Injection): string[] {
  const all = [
    ...injection.headers.map((h) => h[2]),
    // As sent, and as a redirect may carry it back: percent-encoded once or twice (a URL in
    // a `next=` parameter), form-encoded.
    ...injection.query.flatMap(([, v]) => [v, encodeURIComponent(v), encodeURIComponent(encodeURIComponent(v)), new URLSearchParams({ v }).toString().slice(2)]),
    injection.token ?? '',
    ...Object.values(injection.connection?.credentials ?? {}),
  ];
  return [...new Set(all.filter((s) => s.length >= MIN_SECRET))].sort((a, b) => b.length - a.length);
}

const TEXT = /^(text\/|application\/(json|xml|javascript|x-www-form-urlencoded|problem\+json)|[^;]*\+(json|xml))/i;

/**
 * Bodies credproxy scrubs: text of some kind. A compressed one (credproxy asks for identity,
 * an upstream may compress anyway) is decoded first: see `decodersFor`.
 */
export function scrubbable(headers: Record<string, string | string[] | undefined>): boolean {
  const type = String(headers['content-type'] ?? '');
  return type === '' || TEXT.test(type);
}

const DECODERS: Record<string, () => Transform> = {
  gzip: createGunzip,
  'x-gzip': createGunzip,
  deflate: createInflate,
  br: createBrotliDecompress,
};

/**
 * The decoders for a response's Content-Encoding, in the order the body goes through them
 * (the last encoding applied is undone first); `unknown` names one credproxy cannot decode
 * (zstd, compress, …): such a body cannot be scrubbed and is refused.
 */
export function decodersFor(headers: Record<string, string | string[] | undefined>): { decoders: Array<() => Transform>; unknown?: string } {
  const raw = headers['content-encoding'];
  const list = (Array.isArray(raw) ? raw.join(',') : (raw ?? '')).split(',').map((e) => e.trim().toLowerCase()).filter((e) => e !== '' && e !== 'identity');
  const decoders: Array<() => Transform> = [];
  for (const e of list.reverse()) {
    const make = DECODERS[e];
    if (!make) return { decoders: [], unknown: e };
    decoders.push(make);
  }
  return { decoders };
}

/** Headers that carry a URL back to the client: scrubbed of injected values even without scrub_responses. */
export const URL_HEADERS = new Set(['location', 'content-location', 'link', 'refresh']);

/** Replaces each secret in one header value. */
export function scrubValue(value: string, secrets: readonly string[]): string {
  return secrets.reduce((s, secret) => s.split(secret).join(SCRUBBED), value);
}

/** A flat [name, value, …] list with the URL-carrying headers scrubbed (scrub_responses off). */
export function scrubUrlHeaders(list: string[], secrets: readonly string[]): string[] {
  if (secrets.length === 0) return list;
  for (let i = 0; i < list.length; i += 2) if (URL_HEADERS.has(list[i]!)) list[i + 1] = scrubValue(list[i + 1]!, secrets);
  return list;
}

export function scrubHeaders(headers: Record<string, string | string[]>, secrets: readonly string[]): Record<string, string | string[]> {
  const fix = (v: string) => scrubValue(v, secrets);
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers)) out[k] = Array.isArray(v) ? v.map(fix) : fix(v);
  return out;
}

/** scrubHeaders for a flat [name, value, …] list (a 101's headers, written straight to the socket). */
export function scrubHeaderList(list: readonly string[], secrets: readonly string[]): string[] {
  return list.map((v, i) => (i % 2 === 0 ? v : secrets.reduce((s, secret) => s.split(secret).join(SCRUBBED), v)));
}

/**
 * Replaces every occurrence of a secret in a streamed body, across chunk boundaries: it holds
 * back only the last (longest secret − 1) bytes, which could be the start of one, so memory
 * stays bounded whatever the body's size.
 */
export class ScrubStream extends Transform {
  private carry = Buffer.alloc(0);
  private readonly secrets: Buffer[];
  private readonly keep: number;

  constructor(secrets: readonly string[]) {
    super();
    this.secrets = secrets.map((s) => Buffer.from(s));
    this.keep = Math.max(0, ...this.secrets.map((s) => s.length - 1));
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const buf = this.carry.length > 0 ? Buffer.concat([this.carry, chunk]) : chunk;
    let i = 0;
    for (;;) {
      let at = -1;
      let len = 0;
      for (const s of this.secrets) {
        const p = buf.indexOf(s, i);
        if (p !== -1 && (at === -1 || p < at)) {
          at = p;
          len = s.length;
        }
      }
      if (at === -1) break;
      if (at > i) this.push(buf.subarray(i, at));
      this.push(PLACEHOLDER);
      i = at + len;
    }
    // A secret starting before `cut` would have ended inside buf and been found above.
    const cut = Math.max(i, buf.length - this.keep);
    if (cut > i) this.push(buf.subarray(i, cut));
    this.carry = Buffer.from(buf.subarray(cut));
    cb();
  }

  override _flush(cb: TransformCallback): void {
    if (this.carry.length > 0) this.push(this.carry);
    cb();
  }
}
