import type { ServerResponse } from 'node:http';
import { Writable, type Readable } from 'node:stream';
import { errors, type Dispatcher } from 'undici';
import { CredproxyError } from '../errors.js';
import { clientResponseHeaders } from './headers.js';
import { scrubbable, scrubHeaders, ScrubStream } from './scrub.js';

export interface UpstreamRequest {
  /** scheme://host[:port] */
  origin: string;
  /** path and query, as sent */
  path: string;
  method: string;
  headers: string[];
  /** a Buffer when a step had to read it whole (replay, signing) */
  body: Readable | Buffer | null;
}

export interface ForwardOptions {
  headersTimeout: number;
  signal?: AbortSignal;
  /**
   * When it returns true for the upstream status, the answer is read and dropped instead of
   * sent to the client (a 401 that a refresh and replay will answer instead).
   */
  holdBack?: (status: number) => boolean;
  /** called when the upstream's response headers arrive (upstream latency metric) */
  onResponse?: () => void;
  /** secrets to replace in the response headers and text body (`scrub_responses`, scrub.ts) */
  scrub?: readonly string[];
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
        if (opts.holdBack?.(statusCode)) return discard();
        const out = clientResponseHeaders(headers as Record<string, string | string[] | undefined>);
        if (!opts.scrub || opts.scrub.length === 0) {
          res.writeHead(statusCode, out);
          return res;
        }
        const body = scrubbable(headers as Record<string, string | string[] | undefined>);
        // A scrubbed body changes length: it goes chunked.
        if (body) delete out['content-length'];
        res.writeHead(statusCode, scrubHeaders(out, opts.scrub));
        if (!body) return res;
        const scrub = new ScrubStream(opts.scrub);
        scrub.pipe(res);
        return scrub;
      },
    );
  } catch (err) {
    if (res.headersSent || (status !== 0 && !opts.holdBack?.(status))) {
      // The answer was under way: all that is left is to cut the client off, so it sees a
      // truncated body rather than a complete-looking wrong one.
      res.destroy();
      return status;
    }
    throw upstreamError(err);
  }
  return status;
}

function discard(): Writable {
  return new Writable({ write: (_chunk, _enc, cb) => cb() });
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
