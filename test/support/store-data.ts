import pino from 'pino';
import type { Test } from 'tap';
import { openBackend } from '../../src/store/open.js';
import type { Connection, ConnectionStore } from '../../src/store/types.js';

/**
 * One connection of every scheme, labelled ones among them, with fixed times: what the
 * round trips across stores and the export fixture (test/fixtures/export-v1.json) carry.
 */
export const CONNECTIONS: Connection[] = [
  { entity: 'alice@example.com', integration: 'github', scheme: 'oauth2', params: {}, status: 'active', credentials: { access_token: 'gho_a', refresh_token: 'ghr_a' }, expires_at: 4_102_444_800_000, scopes: ['repo'], created_at: 1_700_000_000_000, updated_at: 1_700_000_000_002 },
  { entity: 'alice@example.com', integration: 'github', label: 'work', scheme: 'oauth2', params: {}, status: 'active', credentials: { access_token: 'gho_w', refresh_token: 'ghr_w' }, created_at: 1_700_000_000_000, updated_at: 1_700_000_000_003 },
  { entity: 'alice@example.com', integration: 'github', label: 'me:personal', scheme: 'oauth2', params: {}, status: 'expired', reason: 'refresh refused: invalid_grant', credentials: { access_token: 'x' }, created_at: 1_700_000_000_000, updated_at: 1_700_000_000_004 },
  { entity: 'team:ops', integration: 'stripe', scheme: 'api_key', params: { account: 'acct_1' }, status: 'active', credentials: { api_key: 'sk_live_1' }, created_at: 1_700_000_000_005, updated_at: 1_700_000_000_006 },
  { entity: 'bob', integration: 'jira', scheme: 'basic', params: { site: 'bob' }, status: 'active', credentials: { username: 'bob', password: 'pw' }, created_at: 1_700_000_000_007, updated_at: 1_700_000_000_008 },
  { entity: 'bob', integration: 'linear', scheme: 'bearer', params: {}, status: 'active', credentials: { token: 'lin_api_1' }, created_at: 1_700_000_000_009, updated_at: 1_700_000_000_010 },
  { entity: 'carol', integration: 'aws', scheme: 'aws_sigv4', params: { region: 'eu-west-1' }, status: 'active', credentials: { access_key_id: 'AKIA1', secret_access_key: 's3cr3t', session_token: 'st' }, created_at: 1_700_000_000_011, updated_at: 1_700_000_000_012 },
  { entity: 'carol', integration: 'twitter', scheme: 'oauth1', params: {}, status: 'active', credentials: { token: 'tw_t', token_secret: 'tw_s' }, created_at: 1_700_000_000_013, updated_at: 1_700_000_000_014 },
  { entity: 'dave', integration: 'billing', scheme: 'jwt', params: {}, status: 'active', credentials: { private_key: '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIDave\n-----END PRIVATE KEY-----\n' }, created_at: 1_700_000_000_015, updated_at: 1_700_000_000_016 },
  { entity: 'dave', integration: 'gcp', scheme: 'jwt_bearer', params: {}, status: 'active', credentials: { access_token: 'ya29.x' }, expires_at: 4_102_444_800_000, created_at: 1_700_000_000_017, updated_at: 1_700_000_000_018 },
  { entity: 'erin', integration: 'zendesk', label: 'acme', scheme: 'basic', params: { subdomain: 'acme' }, status: 'failed', reason: 'denied', credentials: { username: 'erin@acme', password: 'zd' }, created_at: 1_700_000_000_019, updated_at: 1_700_000_000_020 },
  { entity: 'erin', integration: 'zendesk', label: 'other', scheme: 'oauth2', params: { subdomain: 'other' }, status: 'initiated', credentials: {}, created_at: 1_700_000_000_021, updated_at: 1_700_000_000_021 },
];

/** Entity token records as src/tokens writes them (hash → record, id → hash), expiring in 2100. */
export const TOKEN_RECORDS: Record<string, string> = {
  'entity-token:0123abcd': JSON.stringify({ id: 'tok_1', entity: 'alice@example.com', integrations: ['github'], expires_at: 4_102_444_800_000 }),
  'entity-token-id:tok_1': '0123abcd',
};
const TOKEN_TTL = () => 4_102_444_800_000 - Date.now();

export async function fill(s: ConnectionStore): Promise<void> {
  for (const c of CONNECTIONS) await s.put(c);
  for (const [k, v] of Object.entries(TOKEN_RECORDS)) await s.kv.set(k, v, TOKEN_TTL());
}

export async function expectSame(t: Test, s: ConnectionStore, what: string): Promise<void> {
  t.same((await s.list('alice@example.com', ['github'])).map((c) => c.label ?? ''), ['', 'me:personal', 'work'], `${what}: alice's labels listed through the index`);
  t.same((await s.list('erin', ['zendesk'])).map((c) => c.label ?? ''), ['acme', 'other'], `${what}: erin's labels`);
  for (const c of CONNECTIONS) t.same(await s.get(c.entity, c.integration, { fresh: true, label: c.label }), c, `${what}: ${c.scheme} ${c.entity} ${c.integration} ${c.label ?? ''}`);
  for (const [k, v] of Object.entries(TOKEN_RECORDS)) t.equal(await s.kv.get(k), v, `${what}: ${k}`);
}

/** The data records (connections, label indexes, kv) under `prefix` in the store at `url`, sorted: what migrate copies. */
export async function recordKeys(url: string, prefix: string): Promise<string[]> {
  const b = await openBackend(url, prefix, pino({ level: 'silent' }));
  const out: string[] = [];
  try {
    for await (const k of b.keys()) if (/^(conn|labels|kv):/.test(k)) out.push(k);
  } finally {
    await b.options.invalidation?.close();
    await b.options.onClose?.();
  }
  return out.sort();
}
