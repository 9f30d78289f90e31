import type { IncomingMessage, ServerResponse } from 'node:http';
import { Agent, type Dispatcher } from 'undici';
import { HOP, serveProxy } from './proxy-server.js';


/**
 * The yardstick: the least a correct Node forward proxy does (node:http in, undici
 * `Agent.stream()` out, hop-by-hop headers dropped, bodies streamed). Issue 8 measured this
 * shape at about 11,500 req/s here; credproxy is compared against it in the same run.
 */
export async function startReferenceProxy(): Promise<{ port: number; close(): Promise<void> }> {
  const agent = new Agent({ keepAliveTimeout: 30_000, connections: 256 });
  return serveProxy(agent, (req: IncomingMessage, res: ServerResponse) => {
    let url: URL;
    try {
      url = new URL(req.url ?? '');
    } catch {
      res.writeHead(400).end();
      return;
    }
    const headers: string[] = ['host', url.host];
    const raw = req.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      if (!HOP.has(raw[i]!.toLowerCase())) headers.push(raw[i]!, raw[i + 1]!);
    }
    const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
    agent
      .stream(
        { origin: url.origin, path: url.pathname + url.search, method: req.method as Dispatcher.HttpMethod, headers, body: hasBody ? req : null },
        ({ statusCode, headers: upHeaders }) => {
          const out: Record<string, string | string[]> = {};
          for (const [k, v] of Object.entries(upHeaders)) if (v !== undefined && !HOP.has(k)) out[k] = v;
          res.writeHead(statusCode, out);
          return res;
        },
      )
      .catch(() => {
        if (res.headersSent) res.destroy();
        else res.writeHead(502).end();
      });
  });
}
