import { readFileSync } from 'node:fs';
import { createServer, request, Agent, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';

/**
 * The loopback relay `credproxy run` opens for its command: a proxy with no credentials in
 * front of credproxy that adds `Proxy-Authorization: Basic ENTITY:TOKEN` to every CONNECT and
 * every request. Clients that never send proxy credentials on CONNECT (git's libcurl without
 * `http.proxyAuthMethod`, Java's HttpClient, Go with a proxy user on some versions) then reach
 * credproxy as the entity, and the command holds no token in its proxy URL at all.
 *
 * Anyone who can reach the port could act as the entity while it is open, so: loopback only,
 * an ephemeral port, closed when the command exits, and (Linux) a connection is served only
 * when its socket belongs to the user running `credproxy run`.
 */
export interface Relay {
  /** `http://127.0.0.1:PORT`, what the command gets as HTTP(S)_PROXY */
  url: string;
  close(): Promise<void>;
}

export interface RelayOptions {
  /** credproxy's proxy address, `http://host:port` */
  proxyUrl: string;
  entity: string;
  token?: string;
  /** who may connect; default: this process's uid where the kernel tells (Linux) */
  uid?: number;
}

/** The uid owning the local TCP socket `127.0.0.1:peerPort` connected to `127.0.0.1:ourPort`, when /proc says. */
export function peerUid(peerPort: number, ourPort: number): number | undefined {
  let table: string;
  try {
    table = readFileSync('/proc/net/tcp', 'utf8');
  } catch {
    return undefined;
  }
  const hex = (p: number) => p.toString(16).toUpperCase().padStart(4, '0');
  for (const line of table.split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols[1]?.endsWith(`:${hex(peerPort)}`) && cols[2]?.endsWith(`:${hex(ourPort)}`)) return Number(cols[7]);
  }
  return undefined;
}

const HOP = new Set(['proxy-authorization', 'proxy-connection', 'connection', 'keep-alive']);

export async function startRelay(opts: RelayOptions): Promise<Relay> {
  const target = new URL(opts.proxyUrl);
  const proxyHost = target.hostname.replace(/^\[|\]$/g, '');
  const proxyPort = Number(target.port || (target.protocol === 'https:' ? 443 : 80));
  const auth = `Basic ${Buffer.from(`${opts.entity}:${opts.token ?? 'x'}`).toString('base64')}`;
  const uid = opts.uid ?? process.getuid?.();
  const agent = new Agent({ keepAlive: true });

  const allowed = (socket: Socket): boolean => {
    if (uid === undefined || process.platform !== 'linux') return true;
    const owner = peerUid(socket.remotePort ?? 0, socket.localPort ?? 0);
    // Unknown owner (no /proc): allow, as on other systems; a known other user: refuse.
    return owner === undefined || owner === uid;
  };

  /** The request head as the client sent it, our Proxy-Authorization instead of theirs. */
  const head = (req: IncomingMessage, line: string): string => {
    const lines = [line];
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const name = req.rawHeaders[i]!;
      if (!HOP.has(name.toLowerCase())) lines.push(`${name}: ${req.rawHeaders[i + 1]}`);
    }
    lines.push(`Proxy-Authorization: ${auth}`);
    return `${lines.join('\r\n')}\r\n\r\n`;
  };

  /** CONNECT and upgrades: the head goes to credproxy, then bytes flow both ways untouched. */
  // Tunnels leave the http server's bookkeeping: closed by hand, so that one a background
  // process of the command still holds does not keep `run` alive after the command exits.
  const tunnels = new Set<Duplex>();
  const splice = (req: IncomingMessage, client: Duplex, rest: Buffer, line: string, extra = '') => {
    if (!allowed(req.socket)) return void client.destroy();
    const upstream = connect(proxyPort, proxyHost);
    tunnels.add(client).add(upstream);
    client.once('close', () => tunnels.delete(client));
    upstream.once('close', () => tunnels.delete(upstream));
    const drop = () => {
      upstream.destroy();
      client.destroy();
    };
    upstream.once('error', () => {
      if (client.writable) client.end('HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      drop();
    });
    client.once('error', drop);
    upstream.once('connect', () => {
      upstream.write(head(req, line).replace(/\r\n\r\n$/, `${extra}\r\n\r\n`));
      if (rest.length > 0) upstream.write(rest);
      upstream.pipe(client).pipe(upstream);
    });
    upstream.once('close', () => client.destroy());
    client.once('close', () => upstream.destroy());
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (!allowed(req.socket)) return void req.socket.destroy();
    if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(req.url ?? '')) {
      res.writeHead(400, { 'content-type': 'text/plain' }).end('credproxy run relay: a proxy; send absolute-form requests or CONNECT\n');
      return;
    }
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !HOP.has(k)) headers[k] = v;
    headers['proxy-authorization'] = auth;
    const out = request({ host: proxyHost, port: proxyPort, method: req.method, path: req.url, headers, agent }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.rawHeaders.filter((_, i, all) => !HOP.has((i % 2 === 0 ? all[i]! : all[i - 1]!).toLowerCase())));
      answer.pipe(res);
    });
    out.once('error', () => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' }).end(`credproxy run relay: credproxy at ${target.host} does not answer\n`);
      else res.destroy();
    });
    req.pipe(out);
  });
  server.on('connect', (req: IncomingMessage, socket: Duplex, rest: Buffer) => splice(req, socket, rest, `CONNECT ${req.url} HTTP/1.1`));
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, rest: Buffer) => splice(req, socket, rest, `${req.method} ${req.url} HTTP/1.1`, '\r\nConnection: Upgrade'));
  server.on('clientError', (_err, socket) => socket.destroy());

  await new Promise<void>((done, fail) => server.once('error', fail).listen(0, '127.0.0.1', () => done()));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((done) => {
        agent.destroy();
        server.close(() => done());
        server.closeAllConnections();
        for (const socket of tunnels) socket.destroy();
      }),
  };
}
