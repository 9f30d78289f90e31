/**
 * RFC 9110 §7.6.1 hop-by-hop headers, plus the proxy's own, `expect` (node answered the
 * 100-continue already) and credproxy's connection label (it picks a credential; the upstream
 * has no business knowing which of the user's accounts this is).
 */
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate',
  'te', 'trailer', 'transfer-encoding', 'upgrade', 'expect', 'host', 'x-connection-label',
]);

function isInjected(injected: ReadonlyArray<readonly [string, string, string]>, lower: string): boolean {
  for (let j = 0; j < injected.length; j++) if (injected[j]![1] === lower) return true;
  return false;
}

/** Adds the names a `Connection` value lists (hop-by-hop too), lower-cased. */
function addListed(listed: Set<string> | undefined, value: string): Set<string> {
  const out = listed ?? new Set<string>();
  for (const t of value.split(',')) {
    const n = t.trim().toLowerCase();
    if (n) out.add(n);
  }
  return out;
}

/**
 * The request headers for the upstream hop, as undici's flat [name, value, …] list with the
 * client's casing and order. Drops hop-by-hop headers, the entity and label headers, and every client
 * copy of a header credproxy injects, then appends the injected ones: `Connection:
 * Authorization` can remove the client's copy but never the injected credential. One pass
 * lower-cases each name once; the names `Connection` lists (rare) are taken out after it.
 */
export function upstreamRequestHeaders(
  raw: readonly string[],
  host: string,
  entityHeader: string,
  injected: ReadonlyArray<readonly [string, string, string]>,
): string[] {
  const entityLower = entityHeader.toLowerCase();
  let out: string[] = ['host', host];
  let listed: Set<string> | undefined;
  let te = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (lower === 'connection') listed = addListed(listed, raw[i + 1]!);
    else if (lower === 'te') te = true;
    if (HOP_BY_HOP.has(lower) || lower === entityLower || isInjected(injected, lower)) continue;
    out.push(name, raw[i + 1]!);
  }
  if (listed !== undefined) {
    const kept = ['host', host];
    for (let i = 2; i < out.length; i += 2) if (!listed.has(out[i]!.toLowerCase())) kept.push(out[i]!, out[i + 1]!);
    out = kept;
  }
  // `te: trailers` is the one TE value that is end-to-end in meaning (gRPC needs it).
  if (te && !listed?.has('te')) {
    for (let i = 0; i < raw.length; i += 2) {
      if (raw[i]!.toLowerCase() === 'te' && raw[i + 1]!.trim().toLowerCase() === 'trailers') out.push('te', 'trailers');
    }
  }
  for (let j = 0; j < injected.length; j++) out.push(injected[j]![0], injected[j]![2]);
  return out;
}

/**
 * Hop-by-hop response headers, plus `x-credproxy-error`: it marks credproxy's own answers
 * (DESIGN.md, contract), so an upstream must not be able to send it through.
 */
const RESPONSE_DROP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'trailer', 'upgrade', 'proxy-authenticate', 'x-credproxy-error']);

/** Connection values that name nothing beyond RESPONSE_DROP. */
const ONLY_DROPPED = new Set(['keep-alive', 'close']);

const NONE: ReadonlySet<string> = new Set();

/**
 * The names a response's `Connection` lists, which are hop-by-hop too, lower-cased.
 * `Connection: keep-alive` (or close), on most answers, lists only what RESPONSE_DROP drops
 * already: the shared empty set, with no splitting.
 */
function responseListed(connection: string | string[] | undefined): ReadonlySet<string> {
  if (connection === undefined) return NONE;
  if (typeof connection === 'string' && ONLY_DROPPED.has(connection.toLowerCase())) return NONE;
  return new Set((typeof connection === 'string' ? connection : connection.join(',')).split(',').map((t) => t.trim().toLowerCase()));
}

/** The upstream's response headers minus hop-by-hop ones, for node's writeHead. */
export function clientResponseHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const listed = responseListed(headers.connection);
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || RESPONSE_DROP.has(name) || listed.has(name)) continue;
    out[name] = value;
  }
  return out;
}

/**
 * The same headers as clientResponseHeaders, as the flat [name, value, …] list node's
 * writeHead takes, a repeated header kept as separate fields in the upstream's order. Made
 * from the header object undici's controller API hands the relay (names lower-cased, values
 * latin1 strings already): decoding undici's raw list again cost 5% of an injected request's
 * instructions (bench:instructions), and the object is made on every response anyway.
 */
export function clientResponseHeaderList(headers: Readonly<Record<string, string | string[] | undefined>>): string[] {
  const listed = responseListed(headers.connection);
  const out: string[] = [];
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || RESPONSE_DROP.has(name) || listed.has(name)) continue;
    if (typeof value === 'string') out.push(name, value);
    else for (let j = 0; j < value.length; j++) out.push(name, value[j]!);
  }
  return out;
}

/** Puts the injected query parameters on the path, after removing the client's own copies of them. */
export function injectQuery(pathWithSearch: string, params: ReadonlyArray<readonly [string, string]>): string {
  if (params.length === 0) return pathWithSearch;
  const q = pathWithSearch.indexOf('?');
  const path = q === -1 ? pathWithSearch : pathWithSearch.slice(0, q);
  const names = new Set(params.map(([n]) => n));
  const kept = q === -1 ? [] : pathWithSearch.slice(q + 1).split('&').filter((pair) => {
    if (pair === '') return false;
    const eq = pair.indexOf('=');
    const rawName = eq === -1 ? pair : pair.slice(0, eq);
    let name = rawName;
    try {
      name = decodeURIComponent(rawName.replace(/\+/g, ' '));
    } catch {
      /* a malformed escape is kept as written; it cannot equal an injected name */
    }
    return !names.has(name);
  });
  for (const [n, v] of params) kept.push(`${encodeURIComponent(n)}=${encodeURIComponent(v)}`);
  return `${path}?${kept.join('&')}`;
}
