import type { Logger } from 'pino';
import { request, type Dispatcher } from 'undici';
import { CredproxyError } from '../errors.js';
import { CONTROL } from './fields.js';

/** Where in the token endpoint's JSON answer the token and its lifetime are (dotted paths). */
export interface TokenResponseMap {
  access_token: string;
  expires_in?: string;
  expires_at?: string;
}

export interface ExchangeRequest {
  url: string;
  method: string;
  headers: Record<string, string>;
  body?: string;
  dispatcher?: Dispatcher;
  /** where the provider's own reason for a refusal goes (debug), never to the proxy client */
  log?: Logger;
  /** values never to log, even inside the provider's reason (the signed assertion) */
  redact?: readonly string[];
}

export interface ExchangedToken {
  access_token: string;
  /** ms since epoch; undefined when the answer says nothing about it */
  expires_at?: number;
}

const MAX_ANSWER_BYTES = 1024 * 1024;
const TIMEOUT_MS = 30_000;

/** The URL without its query, which is all an error message may show of it. */
const shown = (url: string) => url.replace(/[?#].*$/, '');

/**
 * One call to a token endpoint and the mapping of its answer. Every failure is a
 * `refresh_failed` naming the endpoint and what went wrong, never a credential.
 */
export async function exchangeToken(req: ExchangeRequest, map: TokenResponseMap, now: number): Promise<ExchangedToken> {
  let res: Dispatcher.ResponseData;
  try {
    res = await request(req.url, {
      method: req.method as Dispatcher.HttpMethod,
      headers: req.headers,
      body: req.body,
      dispatcher: req.dispatcher,
      headersTimeout: TIMEOUT_MS,
      bodyTimeout: TIMEOUT_MS,
    });
  } catch (err) {
    const detail = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new CredproxyError('refresh_failed', `the token endpoint ${shown(req.url)} could not be reached (${detail})`);
  }
  const text = await readLimited(res.body, req.url);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (res.statusCode < 200 || res.statusCode > 299) {
    const { code, detail } = providerError(json);
    // The description may echo what was sent (an entity id, a claim, the assertion): it is the
    // operator's to read at debug, as token-client.ts does; the client gets the error code only.
    if (detail !== undefined) req.log?.debug({ endpoint: shown(req.url), status: res.statusCode, error: code, detail: redacted(detail, req.redact) }, 'the token endpoint refused the exchange');
    throw new CredproxyError('refresh_failed', `the token endpoint ${shown(req.url)} answered ${res.statusCode}${code === undefined ? '' : `: ${code}`}`);
  }
  if (json === null || typeof json !== 'object') {
    throw new CredproxyError('refresh_failed', `the token endpoint ${shown(req.url)} answered ${res.statusCode} without a JSON object`);
  }
  const token = pick(json, map.access_token);
  if (typeof token !== 'string' || token === '' || CONTROL.test(token)) {
    throw new CredproxyError('refresh_failed', `the token endpoint ${shown(req.url)} answered without a usable token at "${map.access_token}"`);
  }
  return { access_token: token, expires_at: expiry(json, map, now, req.url) };
}

function expiry(json: object, map: TokenResponseMap, now: number, url: string): number | undefined {
  if (map.expires_in !== undefined) {
    const v = pick(json, map.expires_in);
    const n = typeof v === 'string' ? Number(v) : v;
    if (typeof n === 'number' && Number.isFinite(n) && n > 0) return now + n * 1000;
    if (v !== undefined) throw new CredproxyError('refresh_failed', `the token endpoint ${shown(url)} answered an ${map.expires_in} that is not a number of seconds`);
  }
  if (map.expires_at !== undefined) {
    const v = pick(json, map.expires_at);
    const t = typeof v === 'number' ? v * 1000 : typeof v === 'string' ? Date.parse(v) : NaN;
    if (Number.isFinite(t)) return t;
    if (v !== undefined) throw new CredproxyError('refresh_failed', `the token endpoint ${shown(url)} answered an ${map.expires_at} that is neither ISO 8601 nor unix seconds`);
  }
  return undefined;
}

/** `a.b.c` into nested JSON. */
function pick(json: object, path: string): unknown {
  let v: unknown = json;
  for (const part of path.split('.')) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

/** An OAuth error code is a short token (RFC 6749 §5.2); anything else is not shown as one. */
const ERROR_CODE = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * The provider's answer to a refusal: its error code (OAuth `error`), which is safe to show,
 * and its free text (`error_description`, GitHub's `message`), which is only logged.
 */
function providerError(json: unknown): { code?: string; detail?: string } {
  if (json === null || typeof json !== 'object') return {};
  const j = json as Record<string, unknown>;
  const code = typeof j.error === 'string' && ERROR_CODE.test(j.error) ? j.error : undefined;
  const texts = [j.error_description, j.message].filter((v): v is string => typeof v === 'string');
  return { code, detail: texts.length > 0 ? texts.join(': ') : undefined };
}

/** The text without the given secrets or anything shaped like a JWT (a piece of the assertion), cut short. */
function redacted(text: string, secrets: readonly string[] = []): string {
  let out = text;
  for (const s of secrets) if (s !== '') out = out.split(s).join('[redacted]');
  return out.replace(/eyJ[\w-]*(\.[\w-]*)*/g, '[redacted]').slice(0, 400);
}

async function readLimited(body: Dispatcher.ResponseData['body'], url: string): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > MAX_ANSWER_BYTES) {
      body.destroy();
      throw new CredproxyError('refresh_failed', `the token endpoint ${shown(url)} answered more than ${MAX_ANSWER_BYTES} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
