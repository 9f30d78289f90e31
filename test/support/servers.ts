import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { startCredproxy, type RunningCredproxy, type StartOptions } from '../../src/app.js';

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

/** A real HTTP server on an ephemeral loopback port; by default it echoes what it received as JSON. */
export async function startUpstream(
  handler?: (req: IncomingMessage, res: ServerResponse, body: Buffer) => void,
): Promise<Upstream> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body });
      if (handler) return handler(req, res, body);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    origin: `http://127.0.0.1:${port}`,
    seen,
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
    this.lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
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
}

/** Starts credproxy in this process on an ephemeral port, on the memory store unless the settings say otherwise. */
export async function startProxy(dir: string, opts: Partial<StartOptions> = {}): Promise<TestProxy> {
  const logs = new LogCapture();
  const running = await startCredproxy({
    configDir: dir,
    port: 0,
    host: '127.0.0.1',
    logger: pino({ level: 'debug' }, logs),
    ...opts,
    // opts.env adds to the test defaults rather than replacing them
    env: { CREDPROXY_ADMIN_TOKEN: ADMIN, CREDPROXY_SECRET_KEY: SECRET_KEY, ...opts.env },
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
  };
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
    const req = http.request(
      { host: '127.0.0.1', port: proxyPort, method: opts.method ?? 'GET', path: target, headers: opts.headers, agent: false },
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
