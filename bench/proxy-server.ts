import http, { type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Agent } from 'undici';

/** Hop-by-hop headers (RFC 9110 §7.6.1) that a forward proxy must not pass on. */
export const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host']);

/** The bench's own minimal proxies (reference, floor): `handle` on a loopback port; close ends its connections and the agent. */
export async function serveProxy(agent: Agent, handle: RequestListener): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer({ keepAliveTimeout: 65_000 }, handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
      await agent.close();
    },
  };
}
