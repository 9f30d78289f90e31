import { CredproxyApiError, CredproxyClient, CredproxyUnreachableError } from '../client/index.js';

/**
 * The CLI talks to a running proxy through the package's own client (credproxy/client), so the
 * commands and the client cannot drift apart. Errors: ApiError → exit 1, UnreachableError → 3.
 */
export { CredproxyApiError as ApiError, CredproxyUnreachableError as UnreachableError };

/** A client for one command; closed when the command ends, so the CLI exits at once instead of waiting for keep-alive sockets. */
export function cliClient(url: string, adminToken: string): CredproxyClient {
  return new CredproxyClient({ url, adminToken });
}

export type { CredproxyClient };
