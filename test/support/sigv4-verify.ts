import { createHash, createHmac } from 'node:crypto';

/**
 * An independent SigV4 verifier for test upstreams, written from the AWS documentation
 * ("Create a signed AWS API request"), sharing no code with credproxy's signer. Returns
 * undefined when the signature is right, else what is wrong.
 */
export interface ReceivedRequest {
  method: string;
  /** path and query exactly as received */
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

const enc = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
const sha256 = (d: string | Buffer) => createHash('sha256').update(d).digest('hex');
const hmac = (k: string | Buffer, d: string) => createHmac('sha256', k).update(d).digest();

export function verifySigV4(req: ReceivedRequest, secrets: Record<string, string>, opts: { s3?: boolean } = {}): string | undefined {
  const auth = String(req.headers.authorization ?? '');
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$/.exec(auth);
  if (!m) return `malformed Authorization: ${auth}`;
  const [, keyId, day, region, service, signedHeaders, signature] = m as unknown as string[];
  const secret = secrets[keyId!];
  if (!secret) return `unknown access key ${keyId}`;
  const amzDate = String(req.headers['x-amz-date'] ?? '');
  if (!amzDate.startsWith(day!)) return 'x-amz-date does not match the credential scope';
  const q = req.url.indexOf('?');
  const rawPath = q === -1 ? req.url : req.url.slice(0, q);
  const rawQuery = q === -1 ? '' : req.url.slice(q + 1);
  // Every service but S3 signs the path URI-encoded once more than it travels.
  const path = opts.s3 ? rawPath : rawPath.split('/').map(enc).join('/');
  const query = rawQuery
    .split('&')
    .filter(Boolean)
    .map((p) => {
      const [k = '', v = ''] = p.split(/=(.*)/s);
      const dec = (x: string) => decodeURIComponent(x.replace(/\+/g, ' '));
      return [enc(dec(k)), enc(dec(v))] as const;
    })
    .sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const names = signedHeaders!.split(';');
  if (!names.includes('host') || !names.includes('x-amz-date')) return 'host and x-amz-date must be signed';
  const canonicalHeaders = names.map((n) => {
    const v = req.headers[n];
    return `${n}:${(Array.isArray(v) ? v.join(',') : (v ?? '')).trim().replace(/\s+/g, ' ')}\n`;
  });
  const payload = String(req.headers['x-amz-content-sha256'] ?? sha256(req.body));
  if (opts.s3 && payload !== 'UNSIGNED-PAYLOAD' && payload !== sha256(req.body)) return 'x-amz-content-sha256 is not the body hash';
  const canonical = [req.method, path, query, canonicalHeaders.join(''), signedHeaders, payload].join('\n');
  const scope = `${day}/${region}/${service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonical)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, day!), region!), service!), 'aws4_request');
  const expected = createHmac('sha256', key).update(toSign).digest('hex');
  return expected === signature ? undefined : `signature mismatch; canonical request was:\n${canonical}`;
}
