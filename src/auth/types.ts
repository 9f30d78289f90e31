import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import type { AuthConfig, AuthType, IntegrationConfig } from '../config/types.js';
import type { EventSink } from '../events.js';
import type { Metrics } from '../metrics.js';
import type { RefreshState } from '../oauth/refresh-state.js';
import type { WriteBack } from '../store/locked-update.js';
import type { Connection, ConnectionStore } from '../store/types.js';
import type { Template } from './template.js';

/** A credential field a connection supplies (shown by GET /api/integrations). */
export interface FieldInfo {
  name: string;
  secret: boolean;
  optional: boolean;
  pattern?: RegExp;
  description?: string;
}

export interface CompiledInject {
  headers: ReadonlyArray<{ name: string; lower: string; value: Template }>;
  query: ReadonlyArray<{ name: string; value: Template }>;
}

/** What PUT /api/entities/{e}/connections/{i} stores, after the scheme checked it. */
export interface AcceptedCredentials {
  credentials: Record<string, string>;
  expires_at?: number;
  scopes?: string[];
}

export interface CredentialRequest {
  entity: string;
  integration: IntegrationConfig;
  /** undefined for schemes that need none */
  connection: Connection | undefined;
  /** what schemes that talk to a token endpoint need; absent where no request is under way */
  ctx?: SchemeContext;
  /** an access token the upstream just refused (a `refresh_on` status): get a newer one */
  stale?: string;
  /** for schemes that call a token endpoint (the proxy's upstream agent, so `tls.upstream_ca` applies) */
  dispatcher?: Dispatcher;
}

/** The runtime parts a scheme may use to refresh or fetch a token. */
export interface SchemeContext {
  store: ConnectionStore;
  dispatcher: Dispatcher;
  log: Logger;
  /** how long a token endpoint may take */
  timeoutMs: number;
  /** connection events (refresh_failed, recovered); emit() only queues */
  events: EventSink;
  /** refresh outcomes are counted here */
  metrics: Pick<Metrics, 'refreshes'>;
  /** the runtime's refresh bookkeeping (`rt.refresh`) */
  refresh: RefreshState;
  /** the runtime's queue of refresh results the store failed to take (`rt.writeBack`) */
  writeBack: WriteBack;
}

/** A problem with a scheme's own YAML that only code can find (a key that does not parse). */
export interface SchemeProblem {
  /** path below the `auth` entry, e.g. ['private_key'] or ['claims', 'sub']: the error names that line */
  key: (string | number)[];
  message: string;
}

/** What the config loader tells a scheme about its integration. */
export interface SchemeCheckContext {
  /** template names the integration supplies besides the scheme's own fields: entity and the params */
  names: ReadonlySet<string>;
}

/** The upstream request as it will be sent, for schemes that sign each request. */
export interface SignableRequest {
  method: string;
  /** absolute URL with the query exactly as it goes upstream */
  url: URL;
  /** flat [name, value, …] as undici sends them, `host` included */
  headers: readonly string[];
  /**
   * The whole body, read on demand: null when there is none, undefined when it is larger
   * than `limits.replay_body_bytes` (then it is streamed and cannot be part of a signature).
   */
  body(): Promise<Buffer | null | undefined>;
}

/** Headers a signing scheme sets; any copy of them in the request is replaced. */
export interface SignedHeaders {
  headers: ReadonlyArray<readonly [name: string, value: string]>;
  /** further headers (lower-case) to drop: a client's copy of something the scheme owns but did not set this time */
  remove?: readonly string[];
}

/**
 * One authentication scheme. Each type lives in its own file and registers a factory in
 * registry.ts; the pipeline only ever talks to this interface.
 */
export interface AuthScheme {
  readonly type: AuthType;
  readonly config: AuthConfig;
  /** credential fields a connection supplies */
  readonly fields: readonly FieldInfo[];
  /** whether a request needs a stored connection (DESIGN.md: "Which requests need a stored connection") */
  readonly needsConnection: boolean;
  /** template names the scheme computes itself, besides the fields (e.g. basic_auth) */
  readonly computed: readonly string[];
  /** the inject used when the config gives none */
  readonly defaultInject: { headers?: Record<string, string>; query?: Record<string, string> };
  /**
   * Whether a `refresh_on` status from the upstream can be cured by a new token (OAuth
   * schemes with something to refresh with); absent means never.
   */
  refreshable?(connection: Connection | undefined): boolean;
  /** checks credentials handed to the admin API; throws CredproxyError(bad_request) */
  accept(input: Record<string, unknown>, now: number): AcceptedCredentials;
  /**
   * Checks that need I/O, after accept (a user's JWT against the issuer's keys: jwt_verify);
   * throws CredproxyError(bad_request) with the reason.
   */
  verify?(accepted: AcceptedCredentials): Promise<void>;
  /** the template values for one request: fields plus whatever the scheme computes */
  values(req: CredentialRequest): Promise<Record<string, string>> | Record<string, string>;
  /**
   * Config-time checks that need code (keys parse and fit the algorithm, templates name known
   * values). Called once when the config loads; each problem is reported at its key's line.
   */
  check?(ctx: SchemeCheckContext): SchemeProblem[];
  /**
   * Per-request signing (OAuth 1.0a, SigV4): called with the final request after inject and
   * header filtering; the proxy's sign step (src/proxy/sign.ts) applies what it returns.
   */
  sign?(request: SignableRequest, cred: CredentialRequest): Promise<SignedHeaders> | SignedHeaders;
  /**
   * Drops what the scheme cached for this entity (a minted token the upstream just refused
   * with a `refresh_on` status), so the next request gets a fresh one.
   */
  forget?(cred: CredentialRequest): void;
}

export type SchemeFactory = (config: AuthConfig) => AuthScheme;
