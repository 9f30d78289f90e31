import type { UpstreamCounts } from './upstream.js';

/** What the bench's processes share: the one connection stored, and the IPC messages. */
export const BENCH_ENTITY = 'bench-user';
export const BENCH_TOKEN = 'bench-token-0123456789abcdef';
export const ADMIN = 'bench-admin-token-0123456789';
/** The injection-oauth case: a stored oauth2 access token that expires far in the future (no refresh: the cached-token path). */
export const OAUTH_TOKEN = 'bench-oauth-access-0123456789abcdef';
/** The injection-sigv4 case: the stored AWS key pair (each request is signed with it). */
export const SIGV4_KEY = { access_key_id: 'AKIABENCH0123456789A', secret_access_key: 'bench-secret-access-key-0123456789abcdef' };
/** What the bench's credproxy signs for: an API Gateway-like service in one region. */
export const SIGV4_SCOPE = { region: 'eu-west-1', service: 'execute-api' };
/** The refresh storm's entity, on the oauth2 integration `storm` (a token the upstream refuses, and a refresh token). */
export const STORM_ENTITY = 'storm-user';
export const STORM_CONNECTION = { access_token: 'stale-token', refresh_token: 'bench-refresh-1', expires_in: 3600 };

export type ChildMessage =
  | { type: 'ready'; ports: Record<string, number>; info?: Record<string, string> }
  | { type: 'stats'; cpuMicros: number; rss: number; heapUsed: number; heapTotal: number; external: number; counts?: UpstreamCounts; leavesIssued?: number };
