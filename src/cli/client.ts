import { Agent, request } from 'undici';

/** The admin API answered with an error (exit code 1). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** Nothing answered at the URL (exit code 3). */
export class UnreachableError extends Error {
  constructor(
    readonly url: string,
    readonly reason: string,
  ) {
    super(`cannot reach credproxy at ${url} (${reason}); is it running? (--url)`);
    this.name = 'UnreachableError';
  }
}

export interface ApiAnswer {
  status: number;
  body: unknown;
}

/**
 * The admin API of a running proxy, as the CLI talks to it. It has its own connection pool,
 * closed when the command ends, so the CLI exits at once instead of waiting for keep-alive
 * sockets to time out.
 */
export class AdminClient {
  private readonly agent = new Agent({ connections: 2 });

  constructor(
    readonly baseUrl: string,
    private readonly token: string,
    private readonly timeoutMs = 30_000,
  ) {}

  async call(method: 'GET' | 'PUT' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<ApiAnswer> {
    const url = `${this.baseUrl.replace(/\/+$/, '')}${path}`;
    let res;
    try {
      res = await request(url, {
        method,
        dispatcher: this.agent,
        headers: {
          authorization: `Bearer ${this.token}`,
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
      });
    } catch (err) {
      throw new UnreachableError(this.baseUrl, (err as NodeJS.ErrnoException).code ?? (err as Error).message);
    }
    const text = await res.body.text();
    let parsed: unknown = undefined;
    if (text !== '') {
      try {
        parsed = JSON.parse(text);
      } catch {
        throw new ApiError(res.statusCode, 'unexpected_answer', `${url} answered ${res.statusCode} with something that is not JSON; is --url a credproxy?`);
      }
    }
    if (res.statusCode >= 400) {
      const e = (parsed as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
      throw new ApiError(res.statusCode, typeof e?.code === 'string' ? e.code : `http_${res.statusCode}`, typeof e?.message === 'string' ? e.message : `the API answered ${res.statusCode}`);
    }
    return { status: res.statusCode, body: parsed };
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}
