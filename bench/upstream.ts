import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A small JSON answer, about the size of a typical API response's headers plus a short body. */
export const SMALL_BODY = Buffer.from(JSON.stringify({ ok: true, id: 'bench', items: [1, 2, 3], message: 'hello from the bench upstream' }));
export const LARGE_BYTES = 1024 * 1024;
const LARGE_BODY = Buffer.alloc(LARGE_BYTES, 'x');

/** What the upstream saw, so the bench can prove a case measured what it claims (injected or not). */
export interface UpstreamCounts {
  requests: number;
  /** requests that arrived with exactly the credential the bench stored */
  withCredential: number;
  /** requests that arrived with any Authorization header */
  withAuthorization: number;
}

export interface BenchUpstream {
  /** the port the bench integration owns */
  ownedPort: number;
  /** a port no integration owns: passthrough traffic goes here */
  otherPort: number;
  counts(): UpstreamCounts;
  close(): Promise<void>;
}

/**
 * Two listeners with one handler: `/large` answers 1 MiB, anything else the small JSON.
 * Request bodies are drained and dropped.
 */
export async function startBenchUpstream(expectedAuthorization: string): Promise<BenchUpstream> {
  const counts: UpstreamCounts = { requests: 0, withCredential: 0, withAuthorization: 0 };
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    counts.requests++;
    const auth = req.headers.authorization;
    if (auth !== undefined) counts.withAuthorization++;
    if (auth === expectedAuthorization) counts.withCredential++;
    req.resume();
    req.on('end', () => {
      const body = req.url === '/large' ? LARGE_BODY : SMALL_BODY;
      res.writeHead(200, { 'content-type': req.url === '/large' ? 'application/octet-stream' : 'application/json', 'content-length': body.length });
      res.end(body);
    });
  };
  const servers = [http.createServer({ keepAliveTimeout: 65_000 }, handler), http.createServer({ keepAliveTimeout: 65_000 }, handler)];
  const ports = await Promise.all(
    servers.map((s) => new Promise<number>((resolve) => s.listen(0, '127.0.0.1', () => resolve((s.address() as AddressInfo).port)))),
  );
  return {
    ownedPort: ports[0]!,
    otherPort: ports[1]!,
    counts: () => ({ ...counts }),
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
