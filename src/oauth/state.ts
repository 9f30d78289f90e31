import * as oauth from 'oauth4webapi';
import { CredproxyError } from '../errors.js';
import type { KeyValue } from '../store/types.js';
import { FLOW_TTL_MS, kvCall } from './links.js';

/** What an OAuth `state` is bound to, server-side: the browser carries only the random value. */
export interface FlowState {
  entity: string;
  integration: string;
  /** carried from the connect link to the callback: the connection the tokens are stored as */
  label?: string;
  params: Record<string, string>;
  /** PKCE verifier; absent with `pkce: false` */
  verifier?: string;
  redirect_to?: string;
  /** the scopes asked for at the provider (the integration's, or the link's own) */
  scopes?: string[];
  /** sha256 of the nonce in the cookie of the browser that pressed the connect button (binding.ts) */
  browser?: string;
  created_at: number;
}

/** A fresh state (256 random bits) recorded for 10 minutes. */
export async function saveState(kv: KeyValue, flow: Omit<FlowState, 'created_at'>, now = Date.now()): Promise<string> {
  const state = oauth.generateRandomState();
  await kvCall(() => kv.set(`state:${state}`, JSON.stringify({ ...flow, created_at: now }), FLOW_TTL_MS), 'flow_state');
  return state;
}

const UNKNOWN = 'the callback state is unknown, expired or already used';

function parse(state: string | null): string {
  if (!state) throw new CredproxyError('bad_request', 'the callback carries no state');
  if (!/^[A-Za-z0-9_-]{16,128}$/.test(state)) throw new CredproxyError('bad_request', UNKNOWN);
  return state;
}

/**
 * The age is checked too, not only the store's TTL, so a backend that expires lazily cannot
 * stretch it.
 */
function fresh(raw: string | undefined, now: number): FlowState {
  const flow = raw === undefined ? undefined : (JSON.parse(raw) as FlowState);
  if (!flow || now - flow.created_at > FLOW_TTL_MS) throw new CredproxyError('bad_request', UNKNOWN);
  return flow;
}

/** Reads a state without consuming it: a callback refused for the wrong browser leaves it for the right one. */
export async function peekState(kv: KeyValue, state: string | null, now = Date.now()): Promise<FlowState> {
  const s = parse(state);
  return fresh(await kvCall(() => kv.get(`state:${s}`), 'flow_state'), now);
}

/** Consumes a state: missing, unknown, reused and expired all end here as a 400. */
export async function takeState(kv: KeyValue, state: string | null, now = Date.now()): Promise<FlowState> {
  const s = parse(state);
  return fresh(await kvCall(() => kv.take(`state:${s}`), 'flow_state'), now);
}
