import { createHash, randomBytes } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * A small OAuth 2.0 authorization server for the tests, on a real loopback port:
 * /authorize redirects back with a code (or an error when consent is denied), /token checks
 * client authentication and the PKCE verifier, rotates refresh tokens (the old one stops
 * working), and serves the client_credentials grant. Counters say what was asked.
 */
export interface OAuthServerOptions {
  clientId?: string;
  clientSecret?: string;
  /** seconds; null to omit expires_in */
  expiresIn?: number | null;
  /** hand out a new refresh token on every refresh (and invalidate the old one) */
  rotate?: boolean;
  /** answer the token endpoint form-encoded, as GitHub does without Accept: application/json */
  form?: boolean;
  /** add `iss` to the authorization response (RFC 9207) */
  iss?: string;
  /** ms the token endpoint takes before it answers (a slow provider) */
  delayMs?: number;
  /** the `scope` a code exchange answers for the scope asked at /authorize (default: the same; undefined: no scope) */
  grantScope?: (requested: string) => string | undefined;
}

export interface TokenCall {
  grant: string;
  auth: 'basic' | 'post' | 'none';
  params: Record<string, string>;
}

export class OAuthServer {
  port = 0;
  origin = '';
  readonly calls: TokenCall[] = [];
  readonly authorizeRequests: URLSearchParams[] = [];
  /** what /authorize does: approve, or redirect back with error=access_denied */
  consent: 'approve' | 'deny' = 'approve';
  /**
   * 'page': GET /authorize shows a consent page whose Allow button posts back to /authorize
   * (as real providers do) before redirecting; 'redirect' (default): decide at once.
   */
  consentMode: 'redirect' | 'page' = 'redirect';
  /** 'down': reset every token request; 'error500': answer 500; 'garbage': 200 with HTML */
  tokenEndpoint: 'up' | 'down' | 'error500' | 'garbage' = 'up';
  expiresIn: number | null;
  /** awaited before each token request is answered (e.g. to cut the store while a refresh is in flight) */
  beforeTokenReply: ((call: TokenCall) => Promise<void> | void) | undefined;
  /** awaited before a token request is answered: lets a test act while a refresh is under way */
  beforeToken?: () => Promise<void>;
  readonly validAccess = new Set<string>();
  readonly validRefresh = new Set<string>();
  private readonly codes = new Map<string, { challenge?: string; redirectUri: string; scope: string }>();
  private readonly server: http.Server;
  private seq = 0;

  constructor(readonly opts: OAuthServerOptions = {}) {
    this.expiresIn = opts.expiresIn === undefined ? 3600 : opts.expiresIn;
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => this.handle(req, res, Buffer.concat(chunks).toString('utf8')));
    });
  }

  get clientId() {
    return this.opts.clientId ?? 'test-client';
  }
  get clientSecret() {
    return this.opts.clientSecret ?? 'test-client-secret';
  }
  /** token endpoint calls, by grant type */
  count(grant?: string): number {
    return grant ? this.calls.filter((c) => c.grant === grant).length : this.calls.length;
  }

  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as AddressInfo).port;
    this.origin = `http://127.0.0.1:${this.port}`;
    return this;
  }

  close(): Promise<void> {
    return new Promise((r) => {
      this.server.closeAllConnections();
      this.server.close(() => r());
    });
  }

  /** A token set as if a connect flow had happened, for tests that start from a connection. */
  issue(): { access_token: string; refresh_token: string } {
    return { access_token: this.newAccess(), refresh_token: this.newRefresh() };
  }

  /** The access token stops working (the upstream will answer 401), as when a provider revokes it early. */
  revokeAccess(token: string): void {
    this.validAccess.delete(token);
  }

  private newAccess() {
    const t = `at-${++this.seq}-${randomBytes(6).toString('hex')}`;
    this.validAccess.add(t);
    return t;
  }
  private newRefresh() {
    const t = `rt-${++this.seq}-${randomBytes(6).toString('hex')}`;
    this.validRefresh.add(t);
    return t;
  }

  private handle(req: IncomingMessage, res: ServerResponse, body: string) {
    const url = new URL(req.url ?? '/', this.origin);
    if (url.pathname === '/authorize' && req.method === 'POST') return this.authorize(new URLSearchParams(body), res);
    if (url.pathname === '/authorize' && this.consentMode === 'page') return this.consentPage(url.searchParams, res);
    if (url.pathname === '/authorize') return this.authorize(url.searchParams, res);
    if (url.pathname === '/token' && req.method === 'POST') {
      const gate = this.beforeToken?.() ?? Promise.resolve();
      void gate.then(() => this.slowToken(req, res, new URLSearchParams(body)));
      return;
    }
    res.writeHead(404).end();
  }

  /** The provider's own consent page: the request's parameters ride along as hidden fields. */
  private consentPage(q: URLSearchParams, res: ServerResponse) {
    const esc = (v: string) => v.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
    const fields = [...q].map(([k, v]) => `<input type="hidden" name="${esc(k)}" value="${esc(v)}">`).join('');
    const body =
      '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Test provider</title></head><body>' +
      `<h1>Test provider</h1><p>Allow ${esc(q.get('client_id') ?? '')} to use your account?</p>` +
      `<form method="post" action="/authorize">${fields}<button type="submit">Allow</button></form></body></html>`;
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(body) }).end(body);
  }

  private authorize(q: URLSearchParams, res: ServerResponse) {
    this.authorizeRequests.push(q);
    const back = new URL(q.get('redirect_uri') ?? 'http://invalid/');
    const state = q.get('state');
    if (state !== null) back.searchParams.set('state', state);
    if (this.opts.iss) back.searchParams.set('iss', this.opts.iss);
    if (q.get('client_id') !== this.clientId || q.get('response_type') !== 'code') {
      back.searchParams.set('error', 'unauthorized_client');
    } else if (this.consent === 'deny') {
      back.searchParams.set('error', 'access_denied');
      back.searchParams.set('error_description', 'The user said <no> & left');
    } else {
      const code = randomBytes(12).toString('hex');
      const method = q.get('code_challenge_method');
      if (q.get('code_challenge') && method !== 'S256') {
        back.searchParams.set('error', 'invalid_request');
      } else {
        this.codes.set(code, { challenge: q.get('code_challenge') ?? undefined, redirectUri: back.origin + back.pathname, scope: q.get('scope') ?? '' });
        back.searchParams.set('code', code);
      }
    }
    res.writeHead(302, { location: back.href }).end();
  }

  private async slowToken(req: IncomingMessage, res: ServerResponse, p: URLSearchParams) {
    // Deliberately slow when asked: tests of concurrent refreshes need callers to pile up.
    if (this.opts.delayMs) await sleep(this.opts.delayMs);
    this.token(req, res, p);
  }

  private token(req: IncomingMessage, res: ServerResponse, p: URLSearchParams) {
    const params = Object.fromEntries(p);
    const basic = /^basic (.+)$/i.exec(req.headers.authorization ?? '');
    let id: string | undefined;
    let secret: string | undefined;
    let auth: TokenCall['auth'] = 'none';
    if (basic) {
      const [u, s] = Buffer.from(basic[1]!, 'base64').toString('utf8').split(':');
      id = decodeURIComponent((u ?? '').replace(/\+/g, ' '));
      secret = decodeURIComponent((s ?? '').replace(/\+/g, ' '));
      auth = 'basic';
    } else if (p.has('client_secret')) {
      id = p.get('client_id') ?? undefined;
      secret = p.get('client_secret') ?? undefined;
      auth = 'post';
    }
    const call: TokenCall = { grant: p.get('grant_type') ?? '', auth, params };
    this.calls.push(call);
    if (this.beforeTokenReply) return void Promise.resolve(this.beforeTokenReply(call)).then(() => this.answerToken(req, res, p, id, secret));
    this.answerToken(req, res, p, id, secret);
  }

  private answerToken(req: IncomingMessage, res: ServerResponse, p: URLSearchParams, id: string | undefined, secret: string | undefined) {
    if (this.tokenEndpoint === 'down') return req.socket.destroy();
    if (this.tokenEndpoint === 'error500') return this.reply(res, 500, { error: 'server_error' });
    if (this.tokenEndpoint === 'garbage') return res.writeHead(200, { 'content-type': 'text/html' }).end('<html>oops</html>');
    if (id !== this.clientId || secret !== this.clientSecret) return this.reply(res, 401, { error: 'invalid_client' });
    const grant = p.get('grant_type');
    if (grant === 'authorization_code') {
      const code = this.codes.get(p.get('code') ?? '');
      this.codes.delete(p.get('code') ?? '');
      if (!code || code.redirectUri !== p.get('redirect_uri')) return this.reply(res, 400, { error: 'invalid_grant' });
      if (code.challenge !== undefined) {
        const verifier = p.get('code_verifier') ?? '';
        if (createHash('sha256').update(verifier).digest('base64url') !== code.challenge) return this.reply(res, 400, { error: 'invalid_grant', error_description: 'PKCE' });
      } else if (p.has('code_verifier')) return this.reply(res, 400, { error: 'invalid_request' });
      return this.tokens(res, true, this.opts.grantScope ? this.opts.grantScope(code.scope) : code.scope);
    }
    if (grant === 'refresh_token') {
      const rt = p.get('refresh_token') ?? '';
      if (!this.validRefresh.has(rt)) return this.reply(res, 400, { error: 'invalid_grant' });
      if (this.opts.rotate) this.validRefresh.delete(rt);
      return this.tokens(res, this.opts.rotate ?? false);
    }
    if (grant === 'client_credentials') return this.tokens(res, false, p.get('scope') ?? undefined);
    return this.reply(res, 400, { error: 'unsupported_grant_type' });
  }

  private tokens(res: ServerResponse, withRefresh: boolean, scope?: string) {
    const out: Record<string, string | number> = { access_token: this.newAccess(), token_type: 'Bearer' };
    if (withRefresh) out.refresh_token = this.newRefresh();
    if (this.expiresIn !== null) out.expires_in = this.expiresIn;
    if (scope) out.scope = scope;
    this.reply(res, 200, out);
  }

  private reply(res: ServerResponse, status: number, body: Record<string, string | number>) {
    if (this.opts.form) {
      const text = new URLSearchParams(Object.entries(body).map(([k, v]): [string, string] => [k, String(v)])).toString();
      res.writeHead(status, { 'content-type': 'application/x-www-form-urlencoded' }).end(text);
      return;
    }
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body));
  }
}

/** An API upstream that accepts only access tokens the OAuth server currently considers valid. */
export function protectedHandler(as: OAuthServer) {
  return (req: IncomingMessage, res: ServerResponse, body: Buffer) => {
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (!token || !as.validAccess.has(token)) {
      res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer error="invalid_token"' });
      res.end(JSON.stringify({ message: 'Bad credentials' }));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ ok: true, token, method: req.method, body_sha256: createHash('sha256').update(body).digest('hex'), body_length: body.length }));
  };
}
