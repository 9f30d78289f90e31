import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import type { AuthConfig, AuthType, IntegrationConfig } from '../config/types.js';
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
}

/** The runtime parts a scheme may use to refresh or fetch a token. */
export interface SchemeContext {
  store: ConnectionStore;
  dispatcher: Dispatcher;
  log: Logger;
  /** how long a token endpoint may take */
  timeoutMs: number;
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
  /** the template values for one request: fields plus whatever the scheme computes */
  values(req: CredentialRequest): Promise<Record<string, string>> | Record<string, string>;
}

export type SchemeFactory = (config: AuthConfig) => AuthScheme;
