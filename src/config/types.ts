import type { LogoFile } from './logo.js';
import type { HostPattern } from './hosts.js';
import type { AuthDefinition, InjectConfig } from './scheme-definition.js';

export type { InjectConfig };

/** An `auth.type`: a key of the scheme catalog (src/auth/registry.ts). */
export type AuthType = string;

export interface FieldConfig {
  name: string;
  pattern?: string;
  description?: string;
  /** false for non-secret fields (shown by the API); default true */
  secret?: boolean;
  optional?: boolean;
  /** where a user finds this value (the connect page links to it) */
  docs_url?: string;
}

/** One `auth` entry as written in YAML (snake_case, as the user wrote it). */
export interface AuthConfig {
  type: AuthType;
  inject?: InjectConfig;
  /** a bare string is a required secret field of that name (the YAML allows both) */
  fields?: Array<FieldConfig | string>;
  [key: string]: unknown;
}

export interface ParamConfig {
  name: string;
  pattern?: string;
  default?: string;
  description?: string;
}

export interface IntegrationConfig {
  name: string;
  /** the file it came from, for messages */
  file: string;
  hosts: HostPattern[];
  upstream: 'https' | 'http';
  paths: string[];
  params: ParamConfig[];
  refresh_on: number[];
  inject?: InjectConfig;
  description?: string;
  /** how the connect page presents the integration: a friendly name, a logo, a docs link */
  display?: IntegrationDisplay;
  /** the request that checks credentials when a connection is stored */
  verify?: VerifyConfig;
  /** an environment variable `credproxy env` sets to an entity token (SDKs that refuse to start without a key) */
  placeholder_env?: string;
  /** replace an injected secret the upstream echoes in a response header or text body */
  scrub_responses?: boolean;
  /** this integration's own request cap per entity (overrides credproxy.yaml's limits.requests_per_minute) */
  limits?: { requests_per_minute?: number };
  /** one per `auth` entry, in order; the first is the default. Data only: src/auth/scheme-set.ts builds the schemes. */
  schemes: readonly AuthDefinition[];
}

export interface IntegrationDisplay {
  name?: string;
  logo_url?: string;
  /** resolved against the config folder */
  logo_file?: string;
  /** logo_file, read and checked when the config loaded (src/config/logo.ts) */
  logo?: LogoFile;
  docs_url?: string;
}

export interface VerifyConfig {
  method: 'GET' | 'HEAD' | 'POST';
  /** path and query */
  path: string;
  /** statuses that mean the credentials work; absent: any 2xx */
  expect?: number[];
  /** where it goes: a concrete host (or a host template, filled from the connection's params) */
  host: HostPattern;
}

export interface ClientConfig {
  name: string;
  key: string;
  entities: string[];
}

export interface Settings {
  listen: { host: string; port: number };
  public_url: string;
  entity_header: string;
  store: string;
  store_prefix: string;
  admin_token?: string;
  clients?: ClientConfig[];
  allow_unauthenticated: boolean;
  passthrough: 'allow' | 'deny';
  egress: { allow_private: string[] };
  tls: { intercept: boolean; ca_dir: string; upstream_ca?: string };
  /** frame_ancestors: who may frame the connect pages (CSP sources, trailing `/` dropped); empty: nobody */
  connect: { allowed_redirects: string[]; frame_ancestors: string[] };
  /** the operator dashboard at /ui/; enabled unset: on only while `listen` is loopback (docs/dashboard.md) */
  ui: { enabled?: boolean };
  limits: {
    replay_body_bytes: number;
    /** buffered replay bytes across all requests; past it a body streams unbuffered and is not replayed */
    replay_budget_bytes: number;
    /** a proxied request body that sends nothing for this long: 408 request_timeout */
    body_idle_ms: number;
    admin_body_bytes: number;
    upstream_connect_timeout_ms: number;
    upstream_response_timeout_ms: number;
    requests_per_minute?: number;
    /** request line plus headers, in bytes (431 beyond) */
    header_bytes: number;
    /** header fields per request (431 beyond) */
    header_count: number;
    /** the whole header section must arrive within this (slowloris) */
    request_header_timeout_ms: number;
    /** an idle client keep-alive connection is closed after this */
    keep_alive_timeout_ms: number;
    /** an idle pooled upstream connection is closed after this */
    upstream_keep_alive_timeout_ms: number;
    /** open client connections; more are refused */
    max_connections: number;
    /** open CONNECT tunnels; more are refused */
    max_tunnels: number;
    /** open CONNECT tunnels of one client (client key, entity token, or address without client auth); default max_tunnels / 2 */
    max_tunnels_per_client: number;
    /** leaf certificates one client may cause to be signed per second; further CONNECTs to new names get 429 */
    new_leaves_per_second: number;
    /** on SIGTERM/SIGINT, in-flight requests get this long before their connections are cut */
    shutdown_grace_ms: number;
  };
  events?: { webhook_url: string; secret?: string };
  log: { level: string };
  /**
   * requests: false stops the series updated on every proxied request (requests_total,
   * request_duration_seconds, upstream_latency_seconds) and leaves them out of /metrics
   */
  metrics: { requests: boolean };
  /**
   * the audit log: JSON lines in `file`, rotated at `max_bytes` keeping `keep` old files;
   * `enabled: false` records nothing (no ring, no file) and GET /api/audit answers 404
   */
  audit: { enabled: boolean; file?: string; max_bytes: number; keep: number };
}

/** A validated, frozen configuration: what one request sees from start to end. */
export interface Config {
  dir: string;
  settings: Settings;
  integrations: ReadonlyMap<string, IntegrationConfig>;
}
