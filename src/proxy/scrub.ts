import { Transform, type TransformCallback } from 'node:stream';
import type { Injection } from './credential.js';

/** What an echoed secret becomes. */
export const SCRUBBED = '[credproxy:scrubbed]';
const PLACEHOLDER = Buffer.from(SCRUBBED);
/** Shorter values (a `Bearer ` prefix, a region name) are not secrets worth a search and would mangle bodies. */
const MIN_SECRET = 8;

/** The injected secrets of one request: header and query values, the token, the connection's credential fields. */
export function secretsOf(injection: Injection | undefined): string[] {
  if (!injection) return [];
  const all = [
    ...injection.headers.map((h) => h[2]),
    ...injection.query.flatMap(([, v]) => [v, encodeURIComponent(v)]),
    injection.token ?? '',
    ...Object.values(injection.connection?.credentials ?? {}),
  ];
  return [...new Set(all.filter((s) => s.length >= MIN_SECRET))].sort((a, b) => b.length - a.length);
}

const TEXT = /^(text\/|application\/(json|xml|javascript|x-www-form-urlencoded|problem\+json)|[^;]*\+(json|xml))/i;

/** Bodies credproxy scrubs: text of some kind, not content-encoded (it asks the upstream for identity). */
export function scrubbable(headers: Record<string, string | string[] | undefined>): boolean {
  const type = String(headers['content-type'] ?? '');
  const encoding = String(headers['content-encoding'] ?? 'identity').toLowerCase();
  return (type === '' || TEXT.test(type)) && encoding === 'identity';
}

export function scrubHeaders(headers: Record<string, string | string[]>, secrets: readonly string[]): Record<string, string | string[]> {
  const fix = (v: string) => secrets.reduce((s, secret) => s.split(secret).join(SCRUBBED), v);
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
