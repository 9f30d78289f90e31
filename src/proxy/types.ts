import type { Readable } from 'node:stream';
import type { SignableRequest, SignedHeaders } from '../auth/types.js';
import type { Connection } from '../store/types.js';

/*
 * The shapes the pipeline steps pass each other, apart from the steps themselves: a step
 * (and the audit log, the verify endpoint) imports these without importing another step,
 * so no step's file closes an import circle. Types only; it imports nothing of proxy/.
 */

/** What one request's log line says; filled in step by step, so a failure still logs what was known. */
export interface RequestInfo {
  /** the authenticated client's name (never its key) */
  client?: string;
  entity: string | undefined;
  /** the connection label the request asked for; absent for the default connection */
  label?: string;
  integration: string;
  host: string;
  path: string;
  refreshed?: boolean;
  replayed?: boolean;
}

/** A request as it goes upstream. */
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

/** Signs one upstream request with the credential it was bound to (src/proxy/sign.ts). */
export type Signer = (request: SignableRequest) => Promise<SignedHeaders> | SignedHeaders;

/** The headers and query parameters to put on the upstream request. */
export interface Injection {
  headers: Array<[name: string, lower: string, value: string]>;
  query: Array<[name: string, value: string]>;
  connection: Connection | undefined;
  /** the access token injected, for schemes that have one: what a refresh must replace */
  token?: string;
  /** whether a `refresh_on` status can be cured by refreshing (and so the request replayed) */
  refreshable: boolean;
  /** set for schemes that sign each request (src/proxy/sign.ts) */
  sign?: Signer;
  /** drops a credential the scheme minted and cached, after the upstream refused it */
  forget?: () => void;
}
