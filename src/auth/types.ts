import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import type { AuthDefinition, CatalogEntry, CompiledInject, SchemeConfig, SchemeDefinition } from '../config/scheme-definition.js';
import type { ObjectSpec } from '../config/spec.js';
import type { IntegrationConfig } from '../config/types.js';
import type { EventSink } from '../events.js';
import type { Metrics } from '../metrics.js';
import type { RefreshState } from '../oauth/refresh-state.js';
import type { WriteBack } from '../store/locked-update.js';
import type { Connection, ConnectionStore } from '../store/types.js';

export type { CompiledInject, FieldInfo, SchemeCheckContext, SchemeProblem } from '../config/scheme-definition.js';

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
 * One authentication scheme at run time, built from its definition (what the YAML says,
 * src/config/scheme-definition.ts) by its module's `create`. An instance may hold state
 * (minted tokens, back-off); src/auth/scheme-set.ts keeps it across reloads that leave its
 * definition unchanged. The pipeline only ever talks to this interface.
 */
export interface AuthScheme {
  readonly type: string;
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

/**
 * A scheme in one file: its schema entry (`spec`), what its YAML tells the config
 * (`describe`: fields, capabilities, problems) and how to build it (`create`). `C` is the
 * entry's type, read off the spec.
 */
export interface SchemeModule<S extends ObjectSpec = ObjectSpec> extends SchemeDefinition<S> {
  create(definition: AuthDefinition<SchemeConfig<S>>): AuthScheme;
}

/** A scheme module with its entry type erased, as a catalog holds it (src/auth/registry.ts). */
export interface AnySchemeModule extends CatalogEntry {
  create(definition: never): AuthScheme;
}

/** Keeps the spec's literal type, so `describe` and `create` see a typed entry. */
export function defineScheme<S extends ObjectSpec>(module: SchemeModule<S>): SchemeModule<S> {
  return module;
}

/** A definition and the scheme built from it: what a request injects with. */
export interface ResolvedScheme {
  readonly definition: AuthDefinition;
  readonly scheme: AuthScheme;
  readonly inject: CompiledInject;
}
