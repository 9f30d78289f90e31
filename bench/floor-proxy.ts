import type { IncomingMessage, ServerResponse } from 'node:http';
import { Agent, type Dispatcher } from 'undici';
import { HOP, serveProxy } from './proxy-server.js';


/**
 * The floor, not the yardstick: the least a Node forward proxy can spend per request on
 * node:http and undici (`dispatch()` with raw header arrays in both directions, no promise,
 * no header object). It does nothing else, so what credproxy spends above it is the price of
 * its features; the goal is measured against the reference proxy, never against this.
 */
export async function startFloorProxy(): Promise<{ port: number; close(): Promise<void> }> {
  const agent = new Agent({ keepAliveTimeout: 30_000, connections: 256 });
  return serveProxy(agent, (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '';
    // absolute form: http://host[:port]/path
    const slash = url.indexOf('/', url.indexOf('//') + 2);
    if (!url.startsWith('http://') || slash < 0) {
      res.writeHead(400).end();
      return;
    }
    const origin = url.slice(0, slash);
    const headers: string[] = ['host', origin.slice(7)];
    const raw = req.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      if (!HOP.has(raw[i]!.toLowerCase())) headers.push(raw[i]!, raw[i + 1]!);
    }
    const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
    agent.dispatch(
      { origin, path: url.slice(slash), method: req.method as Dispatcher.HttpMethod, headers, body: hasBody ? req : null },
      {
        onConnect() {},
        onHeaders(status: number, rawHeaders: Buffer[], resume: () => void) {
          const out: string[] = [];
          for (let i = 0; i < rawHeaders.length; i += 2) {
            const name = rawHeaders[i]!.toString('latin1');
            if (!HOP.has(name.toLowerCase())) out.push(name, rawHeaders[i + 1]!.toString('latin1'));
          }
          res.writeHead(status, out);
          res.on('drain', resume);
          return true;
        },
        onData(chunk: Buffer) {
          return res.write(chunk);
        },
        onComplete() {
          res.end();
        },
        onError() {
          if (res.headersSent) res.destroy();
          else res.writeHead(502).end();
        },
      },
    );
  });
}
