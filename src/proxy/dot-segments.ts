import { CredproxyError } from '../errors.js';

/**
 * Dot segments in a request to an integration's host. The WHATWG URL parser resolves `.`,
 * `..` and their `%2e` spellings before the path prefix check, but not the forms other
 * servers resolve later: Tomcat and Jetty drop a `;param` first, so `/v1/..;/admin` passes
 * the `/v1` check and is served as `/admin` with `/v1`'s credential; others decode `%2e`,
 * `%2f`, `%5c` or double encodings (`%252e`) before resolving. No legitimate API path needs a
 * `.` or `..` segment, so any path that any of these readings turns into one is refused.
 */

/** The path part of a request target as the client sent it: origin form or absolute form, without query or fragment. */
export function rawPathOf(rawUrl: string): string {
  let path = rawUrl;
  if (!rawUrl.startsWith('/')) {
    // scheme://authority — the URL parser ends an http(s) authority at `\` as well as at `/`.
    const m = /^[a-z][a-z0-9+.-]*:\/\/[^/\\?#]*/i.exec(rawUrl);
    path = m ? rawUrl.slice(m[0].length) : '';
  }
  const end = path.search(/[?#]/);
  return end === -1 ? path : path.slice(0, end);
}

/** Overlong UTF-8 spellings of `.` that lax decoders accept. */
const OVERLONG_DOT = /%c0%ae|%e0%80%ae/gi;

/** One round of percent-decoding that never throws: an invalid sequence decodes what it can. */
function decodeOnce(s: string): string {
  const t = s.replace(OVERLONG_DOT, '.');
  try {
    return decodeURIComponent(t);
  } catch {
    return t.replace(/%(2e|2f|5c|3b)/gi, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  }
}

/** Whether a segment reads as `.` or `..` under any of the readings above. */
function isDotSegment(segment: string): boolean {
  let s = segment;
  // Up to three rounds of decoding: `%252e` is `%2e` to a server that decodes twice.
  for (let i = 0; i < 3; i++) {
    for (const part of s.normalize('NFKC').split(/[/\\]/)) {
      const name = part.split(';', 1)[0];
      if (name === '.' || name === '..') return true;
    }
    const next = decodeOnce(s);
    if (next === s) break;
    s = next;
  }
  return false;
}

export function hasDotSegment(rawPath: string): boolean {
  return mayHoldDot(rawPath) && rawPath.split(/[/\\]/).some(isDotSegment);
}

/**
 * Whether any reading above could find a dot in the path: only a `.`, a `%` escape or a
 * non-ASCII character (NFKC maps some to `.`) can make one. Plain API paths (`/v1/items`)
 * skip the splitting, decoding and normalising on every request. A regular expression, since
 * V8 runs it natively: a loop over the characters counted about 1k instructions a request.
 */
const MAY_HOLD_DOT = /[.%\u0080-\uffff]/;
function mayHoldDot(path: string): boolean {
  return MAY_HOLD_DOT.test(path);
}

/** Throws `400 bad_request` for a path with a dot segment in any spelling. */
export function refuseDotSegments(rawUrl: string, host: string): void {
  if (hasDotSegment(rawPathOf(rawUrl))) {
    throw new CredproxyError('bad_request', `the path has a "." or ".." segment (in some spelling: %2e, ";", "\\"); requests to ${host}, which an integration owns, must name their path plainly`);
  }
}
