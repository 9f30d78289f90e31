import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import https from 'node:https';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import pino from 'pino';
import { startCredproxy, type RunningCredproxy, type StartOptions } from '../../src/app.js';

/** A self-signed certificate for 127.0.0.1 and localhost (valid to 2126), for HTTPS upstreams; trust it with `tls.upstream_ca`. */
export const TEST_CERT = fileURLToPath(new URL('../fixtures/localhost-cert.pem', import.meta.url));
const TEST_KEY = fileURLToPath(new URL('../fixtures/localhost-key.pem', import.meta.url));

/** What a test upstream saw of one request. */
export interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
}

export interface Upstream {
  port: number;
  origin: string;
  seen: Seen[];
  close(): Promise<void>;
}

/**
 * A real HTTP server on an ephemeral loopback port; by default it echoes what it received as
 * JSON. With `tls` (see certs.ts) it is an HTTPS server.
 */
export async function startUpstream(
  handler?: (req: IncomingMessage, res: ServerResponse, body: Buffer) => void,
  /** tls true: the fixture certificate for 127.0.0.1/localhost (TEST_CERT); or a key and certificate of the test's own */
  opts: { tls?: true | { key: string; cert: string }; host?: string; port?: number } = {},
): Promise<Upstream & { server: http.Server }> {
  const seen: Seen[] = [];
  const listener = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body });
      if (handler) return handler(req, res, body);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers }));
    });
  };
  const tls = opts.tls === true ? { cert: readFileSync(TEST_CERT), key: readFileSync(TEST_KEY) } : opts.tls;
  const server: http.Server = tls ? https.createServer(tls, listener) : http.createServer(listener);
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    origin: `${opts.tls ? 'https' : 'http'}://${host}:${port}`,
    seen,
    server,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** A config folder in a fresh temporary directory. */
export function configDir(settings: string, integrations: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'credproxy-test-'));
  mkdirSync(join(dir, 'integrations'));
  writeFileSync(join(dir, 'credproxy.yaml'), settings);
  for (const [name, text] of Object.entries(integrations)) writeFileSync(join(dir, 'integrations', `${name}.yaml`), text);
  return dir;
}

export const ADMIN = 'test-admin-token-0123456789';
export const SECRET_KEY = Buffer.alloc(32, 7).toString('base64');

/** Captured log lines, for asserting that no secret ever reaches them. */
export class LogCapture extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _enc: string, cb: () => void) {
    for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) {
      this.lines.push(line);
      this.emit('line', line);
    }
    cb();
  }
  get text() {
    return this.lines.join('\n');
  }
}

export interface TestProxy extends RunningCredproxy {
  logs: LogCapture;
  /** PUT a connection through the admin API */
  connect(entity: string, integration: string, body: unknown): Promise<Response>;
  admin(method: string, path: string, body?: unknown): Promise<Response>;
  /** a connect link through the admin API (`query`: e.g. `?label=work`); anything but 200 throws */
  connectLink(entity: string, integration: string, body?: unknown, query?: string): Promise<string>;
  /** the connection's status through the admin API, `none` when there is none */
  connectionStatus(entity: string, integration: string): Promise<string>;
}

/** Starts credproxy in this process on an ephemeral port, on the memory store unless the settings say otherwise. */
export async function startProxy(dir: string, opts: Partial<StartOptions> = {}): Promise<TestProxy> {
  const logs = new LogCapture();
  const { env, ...rest } = opts;
  const running = await startCredproxy({
    configDir: dir,
    port: 0,
    host: '127.0.0.1',
    logger: pino({ level: 'debug' }, logs),
    ...rest,
    // merged, not replaced: a test that adds one variable keeps the admin token and key
    env: { CREDPROXY_ADMIN_TOKEN: ADMIN, CREDPROXY_SECRET_KEY: SECRET_KEY, ...env },
  });
  const admin = (method: string, path: string, body?: unknown) =>
    fetch(`${running.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
  return {
    ...running,
    logs,
    admin,
    connect: (entity, integration, body) => admin('PUT', `/api/entities/${entity}/connections/${integration}`, body),
    connectLink: async (entity, integration, body = {}, query = '') => {
      const r = await admin('POST', `/api/entities/${entity}/connections/${integration}/connect${query}`, body);
      if (r.status !== 200) throw new Error(`connect link: ${r.status} ${await r.text()}`);
      return ((await r.json()) as { connect_url: string }).connect_url;
    },
    connectionStatus: async (entity, integration) => {
      const r = await admin('GET', `/api/entities/${entity}/connections/${integration}`);
      return r.status === 404 ? 'none' : ((await r.json()) as { status: string }).status;
    },
  };
}

/**
 * Test upstreams listen on loopback, which passthrough must not reach by default once
 * `egress` is enforced (DESIGN.md); tests that pass through to them say so explicitly.
 */
export const LOOPBACK_EGRESS = 'egress: { allow_private: ["127.0.0.0/8", "::1/128"] }\n';

/** The one tap test object type, without importing tap's internals. */
type TapTest = { teardown(fn: () => unknown): void };

export interface Setup {
  up: Upstream;
  proxy: TestProxy;
  /** the config folder, for tests that restart or edit it */
  dir: string;
}

/**
 * The usual arrangement: an echoing upstream, a config folder whose integration files may
 * name the upstream's port, and credproxy on it; everything is closed when the test ends.
 */
export async function setup(
  t: TapTest,
  opts: {
    settings?: string;
    integrations?: (up: Upstream) => Record<string, string>;
    handler?: Parameters<typeof startUpstream>[0];
    tls?: boolean;
    /** keep the local CA (tls.ca_dir) inside the config folder, for tests that intercept HTTPS */
    caInDir?: boolean;
    proxy?: Partial<StartOptions>;
  } = {},
): Promise<Setup> {
  const up = await startUpstream(opts.handler, { tls: opts.tls ? true : undefined });
  t.teardown(() => up.close());
  const settings = opts.settings ?? `store: memory\n${LOOPBACK_EGRESS}`;
  const dir = configDir(settings, opts.integrations?.(up) ?? {});
  if (opts.caInDir) writeFileSync(join(dir, 'credproxy.yaml'), `${settings}tls: { ca_dir: ${join(dir, 'ca')} }\n`);
  const proxy = await startProxy(dir, opts.proxy);
  t.teardown(() => proxy.close());
  return { up, proxy, dir };
}

/** An integration file for a plain-http test upstream (hosts given as written). */
export function integrationYaml(hosts: string[], auth: string, extra = ''): string {
  return `hosts: ${JSON.stringify(hosts)}\nupstream: http\nauth: ${auth}\n${extra}`;
}

/** Asserts one of credproxy's own error answers: status, code in body and header; returns the message. */
export function errorOf(r: ProxiedResponse | { status: number; headers: IncomingHttpHeaders; body: Buffer }): { status: number; code: string | undefined; header: string | string[] | undefined; message: string } {
  let parsed: { error?: { code?: string; message?: string } } = {};
  try {
    parsed = JSON.parse(r.body.toString('utf8'));
  } catch {
    /* not JSON: code stays undefined and the assertion fails */
  }
  return { status: r.status, code: parsed.error?.code, header: r.headers['x-credproxy-error'], message: parsed.error?.message ?? '' };
}

export interface ProxiedResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  json<T = unknown>(): T;
}

/** Sends one absolute-form request through the proxy over a real socket, as curl -x would. */
export function viaProxy(
  proxyPort: number,
  target: string,
  opts: { method?: string; headers?: Record<string, string | string[]>; body?: string | Buffer } = {},
): Promise<ProxiedResponse> {
  return new Promise((resolve, reject) => {
    // node's client frames a DELETE or OPTIONS body with neither length nor chunking; say it.
    const framed = opts.body === undefined || Object.keys(opts.headers ?? {}).some((h) => /^(content-length|transfer-encoding)$/i.test(h));
    const headers = framed ? opts.headers : { ...opts.headers, 'content-length': String(Buffer.byteLength(opts.body!)) };
    const req = http.request(
      { host: '127.0.0.1', port: proxyPort, method: opts.method ?? 'GET', path: target, headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body.toString('utf8')) });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

/**
 * Writes raw bytes to the proxy and returns everything it answers until it closes the socket
 * (requests the tests cannot form with http.request). Send `Connection: close` unless the
 * request is one credproxy refuses outright. The socket is not half-closed: node's server
 * drops a request whose client half-closes before the answer (httpAllowHalfOpen is off).
 */
export function rawRequest(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(text));
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}
