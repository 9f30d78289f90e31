import net, { type AddressInfo } from 'node:net';

/** One HTTP/1.1 response as read off the wire. */
export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** the bytes exactly as received */
  raw: string;
}

/** Parses the first response in `text`; undefined until it is complete (by Content-Length). */
export function parseResponse(text: string): RawResponse | undefined {
  const end = text.indexOf('\r\n\r\n');
  if (end === -1) return undefined;
  const [statusLine, ...lines] = text.slice(0, end).split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '');
  if (!m) return undefined;
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(':');
    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  const length = headers['content-length'];
  const body = text.slice(end + 4);
  if (length !== undefined && Buffer.byteLength(body) < Number(length)) return undefined;
  return { status: Number(m[1]), headers, body: length === undefined ? body : body.slice(0, Number(length)), raw: text };
}

/**
 * Writes raw bytes to the server and resolves with its first answer (or with status 0 when
 * it closed the connection without one). `chunks` are written one by one, so a test can
 * hold the connection open mid-request.
 */
export function rawRequest(port: number, ...chunks: Array<string | Buffer>): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    let done = false;
    const finish = (r: RawResponse) => {
      if (done) return;
      done = true;
      socket.destroy();
      resolve(r);
    };
    socket.on('connect', () => {
      for (const c of chunks) socket.write(c);
    });
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      const r = parseResponse(text);
      if (r) finish(r);
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNRESET') return finish(parseResponse(text) ?? { status: 0, headers: {}, body: '', raw: text });
      if (!done) reject(err);
    });
    socket.on('close', () => finish(parseResponse(text) ?? { status: 0, headers: {}, body: '', raw: text }));
  });
}

/** A raw TCP "upstream" that answers each connection with `reply(n)` bytes; counts connections and requests. */
export async function startRawUpstream(reply: (connection: number, request: string) => string | undefined) {
  let connections = 0;
  const requests: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    const n = ++connections;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buf = '';
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      while (buf.includes('\r\n\r\n')) {
        const end = buf.indexOf('\r\n\r\n') + 4;
        const req = buf.slice(0, end);
        buf = buf.slice(end);
        requests.push(req);
        const out = reply(n, req);
        if (out !== undefined) socket.write(out);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    origin: `http://127.0.0.1:${port}`,
    requests,
    get connections() {
      return connections;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
