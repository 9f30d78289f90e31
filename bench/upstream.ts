import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A small JSON answer, about the size of a typical API response's headers plus a short body. */
export const SMALL_BODY = Buffer.from(JSON.stringify({ ok: true, id: 'bench', items: [1, 2, 3], message: 'hello from the bench upstream' }));
export const LARGE_BYTES = 1024 * 1024;
const LARGE_BODY = Buffer.alloc(LARGE_BYTES, 'x');

/** What the upstream saw, so the bench can prove a case measured what it claims (injected or not). */
export interface UpstreamCounts {
  requests: number;
  /**
   * requests that arrived with the credential their listener expects: the bench token
   * (owned/other), the oauth2 access token (oauth), a SigV4 Authorization for the stored key
   * id and scope with its X-Amz-Date (sigv4)
   */
  withCredential: number;
  /** requests that arrived with any Authorization header */
  withAuthorization: number;
  /** calls to the storm integration's token endpoint */
  tokenCalls: number;
  /** storm upstream requests refused with 401 (a stale token) */
  refused: number;
  /** when things happened at the storm upstream and token endpoint (epoch ms, sub-ms precision; 0 = not yet) */
  timeline: StormTimeline;
}

/** Times at the storm's servers: where a storm's time went, seen from the upstream side. */
export interface StormTimeline {
  first401: number;
  last401: number;
  tokenStart: number;
  tokenEnd: number;
  first200: number;
  last200: number;
}

const now = () => performance.timeOrigin + performance.now();

export interface BenchUpstream {
  /** the port the bench integration owns */
  ownedPort: number;
  /** a port no integration owns: passthrough traffic goes here */
  otherPort: number;
  /** the injection-oauth integration's port: expects `Bearer <oauth access token>` */
  oauthPort: number;
  /** the injection-sigv4 integration's port: expects a SigV4 Authorization and X-Amz-Date */
  sigv4Port: number;
  /** the refresh-storm upstream: 401 unless the latest token the token endpoint issued */
  stormPort: number;
  /** the storm integration's token endpoint (POST /token), answering after `tokenLatencyMs` */
  tokenPort: number;
  counts(): UpstreamCounts;
  /** clears the storm timeline before a storm */
  resetTimeline(): void;
  close(): Promise<void>;
}

/** What the upstream counts as the credential arriving, per listener. */
export interface ExpectedCredentials {
  /** the bench (bearer) integration's Authorization value */
  bearer: string;
  /** the oauth2 integration's Authorization value */
  oauth: string;
  /** the aws_sigv4 integration's key id and credential scope */
  sigv4: { accessKeyId: string; region: string; service: string };
}

/**
 * A SigV4-signed request, checked by shape (not cryptographically: an HMAC chain per request
 * would load the upstream the bench shares its cores with): the Authorization names the
 * stored key id and the integration's scope, and X-Amz-Date is on the credential's day.
 */
export function sigv4Checker(expect: ExpectedCredentials['sigv4']): (req: Pick<IncomingMessage, 'headers'>) => boolean {
  const shape = new RegExp(
    `^AWS4-HMAC-SHA256 Credential=${expect.accessKeyId}/(\\d{8})/${expect.region}/${expect.service}/aws4_request, SignedHeaders=[a-z0-9;-]*host[a-z0-9;-]*, Signature=[0-9a-f]{64}$`,
  );
  return (req) => {
    const m = shape.exec(req.headers.authorization ?? '');
    const date = req.headers['x-amz-date'];
    return m !== null && typeof date === 'string' && /^\d{8}T\d{6}Z$/.test(date) && date.startsWith(m[1]!);
  };
}

/**
 * Four listeners with one handler (owned, other, oauth, sigv4), each with its own idea of the
 * credential: `/large` answers 1 MiB, anything else the small JSON. Request bodies are
 * drained and dropped. Then the refresh storm's upstream and its token endpoint.
 */
export async function startBenchUpstream(expect: ExpectedCredentials, tokenLatencyMs = 50): Promise<BenchUpstream> {
  const timeline: StormTimeline = { first401: 0, last401: 0, tokenStart: 0, tokenEnd: 0, first200: 0, last200: 0 };
  const counts: UpstreamCounts = { requests: 0, withCredential: 0, withAuthorization: 0, tokenCalls: 0, refused: 0, timeline };
  let issued = 'none-yet';
  const serve = (carries: (req: IncomingMessage) => boolean) => (req: IncomingMessage, res: ServerResponse) => {
    counts.requests++;
    if (req.headers.authorization !== undefined) counts.withAuthorization++;
    if (carries(req)) counts.withCredential++;
    req.resume();
    req.on('end', () => {
      const body = req.url === '/large' ? LARGE_BODY : SMALL_BODY;
      res.writeHead(200, { 'content-type': req.url === '/large' ? 'application/octet-stream' : 'application/json', 'content-length': body.length });
      res.end(body);
    });
  };
  const storm = (req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    const ok = req.headers.authorization === `Bearer ${issued}`;
    if (!ok) counts.refused++;
    const t = now();
    if (ok) {
      timeline.first200 ||= t;
      timeline.last200 = t;
    } else {
      timeline.first401 ||= t;
      timeline.last401 = t;
    }
    res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json', 'content-length': ok ? SMALL_BODY.length : 2 });
    res.end(ok ? SMALL_BODY : '{}');
  };
  const token = (req: IncomingMessage, res: ServerResponse) => {
    counts.tokenCalls++;
    timeline.tokenStart = now();
    req.resume();
    req.on('end', () => {
      setTimeout(() => {
        issued = `fresh-${counts.tokenCalls}-${Date.now()}`;
        const body = JSON.stringify({ access_token: issued, token_type: 'Bearer', expires_in: 3600, refresh_token: 'bench-refresh-2' });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
        timeline.tokenEnd = now();
      }, tokenLatencyMs);
    });
  };
  const bearer = serve((req) => req.headers.authorization === expect.bearer);
  const oauth = serve((req) => req.headers.authorization === expect.oauth);
  const sigv4 = serve(sigv4Checker(expect.sigv4));
  const servers = [bearer, bearer, storm, token, oauth, sigv4].map((h) => http.createServer({ keepAliveTimeout: 65_000 }, h));
  const ports = await Promise.all(
    servers.map((s) => new Promise<number>((resolve) => s.listen(0, '127.0.0.1', () => resolve((s.address() as AddressInfo).port)))),
  );
  return {
    ownedPort: ports[0]!,
    otherPort: ports[1]!,
    stormPort: ports[2]!,
    tokenPort: ports[3]!,
    oauthPort: ports[4]!,
    sigv4Port: ports[5]!,
    counts: () => ({ ...counts, timeline: { ...timeline } }),
    resetTimeline: () => Object.assign(timeline, { first401: 0, last401: 0, tokenStart: 0, tokenEnd: 0, first200: 0, last200: 0 }),
    close: async () => {
      await Promise.all(
        servers.map(
          (s) =>
            new Promise<void>((resolve) => {
              s.closeAllConnections();
              s.close(() => resolve());
            }),
        ),
      );
    },
  };
}
