/**
 * credproxy answered with an error of its own: `code` is its `X-Credproxy-Error` (see the
 * error table in the docs), `status` the HTTP status. Answers that are not credproxy's (no
 * header, no JSON error) get `http_<status>` or `unexpected_answer`.
 */
export class CredproxyApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** the parsed error body, e.g. `verification` of a refused PUT */
    readonly body?: unknown,
  ) {
    super(message);
    this.name = 'CredproxyApiError';
  }
}

/** Nothing answered at the URL (refused, reset, timed out). */
export class CredproxyUnreachableError extends Error {
  constructor(
    readonly url: string,
    readonly reason: string,
  ) {
    super(`cannot reach credproxy at ${url} (${reason})`);
    this.name = 'CredproxyUnreachableError';
  }
}
