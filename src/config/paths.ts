/**
 * Path prefixes an integration owns. Here, below the proxy, because the config checks a
 * `verify` path with the same rule the proxy routes by.
 */

/**
 * Segment-aware: `/v1` owns `/v1` and `/v1/x`, not `/v1x`. A path must stay under the prefix
 * also as an upstream that decodes `%2F`, `%5C` and `%2E` before resolving dot segments
 * would read it: `/v1/..%2Fadmin` is `/admin` there, so it does not match `/v1`.
 */
export function pathMatches(prefix: string, path: string): boolean {
  if (prefix === '/') return true;
  return underPrefix(prefix, path) && (!path.includes('%') || underPrefix(prefix, decodedForm(path)));
}

function underPrefix(prefix: string, path: string): boolean {
  return path === prefix || (path.startsWith(prefix) && (path[prefix.length] === '/' || path[prefix.length] === '?'));
}

/** The path with encoded slashes, backslashes and dots decoded and dot segments resolved (RFC 3986 §5.2.4). */
function decodedForm(path: string): string {
  const q = path.indexOf('?');
  const decoded = (q === -1 ? path : path.slice(0, q)).replace(/%2f|%5c/gi, '/').replace(/%2e/gi, '.');
  const out: string[] = [];
  const segments = decoded.split('/');
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i]!;
    if (seg === '..') {
      if (out.length > 1) out.pop();
    } else if (seg !== '.') out.push(seg);
    else if (i === segments.length - 1) out.push('');
  }
  return out.join('/');
}
