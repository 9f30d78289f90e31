import type { UpstreamCounts } from './upstream.js';

/** What the bench's processes share: the one connection stored, and the IPC messages. */
export const BENCH_ENTITY = 'bench-user';
export const BENCH_TOKEN = 'bench-token-0123456789abcdef';
export const ADMIN = 'bench-admin-token-0123456789';

export type ChildMessage =
  | { type: 'ready'; ports: Record<string, number> }
  | { type: 'stats'; cpuMicros: number; rss: number; counts?: UpstreamCounts };
