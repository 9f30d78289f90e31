import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { errors, type Dispatcher } from 'undici';
import { CredproxyError } from '../errors.js';
import { clientResponseHeaders } from './headers.js';

export interface UpstreamRequest {
  /** scheme://host[:port] */
  origin: string;
  /** path and query, as sent */
  path: string;
  method: string;
  headers: string[];
  body: Readable | null;
}

export interface ForwardOptions {
  headersTimeout: number;
  signal?: AbortSignal;
  /** called when the upstream's response headers arrive (upstream latency metric) */
  onResponse?: () => void;
}

/**
 * Sends the request with undici's `stream()` and pipes the answer straight into the client's
 * response, so bodies of any size flow with backpressure and are never held whole.
 * Resolves with the upstream status once the body is through.
 */
export async function forward(agent: Dispatcher, up: UpstreamRequest, res: ServerResponse, opts: ForwardOptions): Promise<number> {
  let status = 0;
  try {
    await agent.stream(
      {
        origin: up.origin,
        path: up.path,
        method: up.method as Dispatcher.HttpMethod,
        headers: up.headers,
        body: up.body,
        headersTimeout: opts.headersTimeout,
        bodyTimeout: opts.headersTimeout,
        signal: opts.signal,
        // No redirect interceptor on the agent: redirects go back to the client untouched,
        // and the proxy never follows one with a credential.
      },
      ({ statusCode, headers }) => {
        status = statusCode;
        opts.onResponse?.();
        res.writeHead(statusCode, clientResponseHeaders(headers as Record<string, string | string[] | undefined>));
        return res;
      },
    );
  } catch (err) {
    if (status !== 0 || res.headersSent) {
      // The answer was under way: all that is left is to cut the client off, so it sees a
      // truncated body rather than a complete-looking wrong one.
      res.destroy();
      return status;
    }
    throw upstreamError(err);
  }
  return status;
}

export function upstreamError(err: unknown): CredproxyError {
  if (err instanceof CredproxyError) return err;
  if (err instanceof errors.HeadersTimeoutError || err instanceof errors.ConnectTimeoutError || err instanceof errors.BodyTimeoutError) {
    return new CredproxyError('upstream_timeout', `the upstream did not answer in time (${(err as Error).message})`);
  }
  const code = (err as NodeJS.ErrnoException).code;
  const detail = code ?? (err as Error).message ?? 'unknown error';
  return new CredproxyError('upstream_error', `the upstream could not be reached or answered garbage (${detail})`);
}
