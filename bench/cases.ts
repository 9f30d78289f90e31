import type { BenchOptions } from './options.js';
import type { CaseInfo } from './report.js';

/** One row of the bench: what is sent, through which proxy, and what the upstream must see. */
export interface CaseDef extends CaseInfo {
  /** which upstream listener: the bench (bearer) integration's, no integration's, the oauth2 or the aws_sigv4 integration's */
  port: 'owned' | 'other' | 'oauth' | 'sigv4';
  path: string;
  entity: boolean;
  /**
   * what the upstream must have seen for the case to count: on every request the credential
   * its listener expects (the stored token, or a SigV4 signature by the stored key), or no
   * Authorization at all
   */
  expect: 'credential' | 'no-authorization';
  /** the case fails if credproxy called a token endpoint meanwhile (a cached token must be used as it is) */
  noTokenCalls?: boolean;
  /** 1 MiB request bodies (POST) instead of GETs */
  upload?: boolean;
  /**
   * the load generator (wrk or autocannon, see `generatorFor`), or the undici driver: over
   * CONNECT + TLS to credproxy's intercepting leaf (`https`), or plain absolute-form requests
   * from the same client.
   */
  driver?: 'undici-http' | 'undici-https';
  /** which credproxy process: the in-process bench one (default), or `credproxy start` on Redis with 1 or N processes */
  process?: 'redis1' | 'workers' | 'postgres1';
}

/** The cases, in the order each round runs them. */
export const CASES: CaseDef[] = [
  { name: 'direct', label: 'direct to upstream', group: 'small', via: 'direct', port: 'owned', path: '/small', entity: false, expect: 'no-authorization' },
  { name: 'reference', label: 'reference proxy (node:http + undici stream)', group: 'small', via: 'reference', port: 'owned', path: '/small', entity: false, expect: 'no-authorization' },
  { name: 'floor', label: 'floor: node:http + undici dispatch, raw headers, nothing else', group: 'small', via: 'floor', port: 'owned', path: '/small', entity: false, expect: 'no-authorization' },
  { name: 'passthrough', label: 'credproxy passthrough (no integration)', group: 'small', via: 'credproxy', port: 'other', path: '/small', entity: false, expect: 'no-authorization' },
  { name: 'injection', label: 'credproxy injection (bearer, per entity)', group: 'small', via: 'credproxy', port: 'owned', path: '/small', entity: true, expect: 'credential' },
  { name: 'injection-oauth', label: 'credproxy injection (oauth2, cached token)', group: 'small', via: 'credproxy', port: 'oauth', path: '/small', entity: true, expect: 'credential', noTokenCalls: true },
  { name: 'injection-sigv4', label: 'credproxy injection (aws_sigv4, signed per request)', group: 'small', via: 'credproxy', port: 'sigv4', path: '/small', entity: true, expect: 'credential' },
  { name: 'direct-1mib', label: 'direct, 1 MiB responses', group: 'large', via: 'direct', port: 'owned', path: '/large', entity: false, expect: 'no-authorization' },
  { name: 'reference-1mib', label: 'reference proxy, 1 MiB responses', group: 'large', via: 'reference', port: 'owned', path: '/large', entity: false, expect: 'no-authorization' },
  { name: 'injection-1mib', label: 'credproxy injection, 1 MiB responses', group: 'large', via: 'credproxy', port: 'owned', path: '/large', entity: true, expect: 'credential' },
  { name: 'direct-upload', label: 'direct, 1 MiB uploads', group: 'upload', via: 'direct', port: 'owned', path: '/upload', entity: false, expect: 'no-authorization', upload: true },
  { name: 'reference-upload', label: 'reference proxy, 1 MiB uploads', group: 'upload', via: 'reference', port: 'owned', path: '/upload', entity: false, expect: 'no-authorization', upload: true },
  { name: 'injection-upload', label: 'credproxy injection, 1 MiB uploads', group: 'upload', via: 'credproxy', port: 'owned', path: '/upload', entity: true, expect: 'credential', upload: true },
  { name: 'injection-http-undici', label: 'credproxy injection, plain HTTP (undici client)', group: 'tls', via: 'credproxy', port: 'owned', path: '/small', entity: true, expect: 'credential', driver: 'undici-http' },
  { name: 'injection-https', label: 'credproxy injection, intercepted HTTPS (undici client, CONNECT + TLS kept alive)', group: 'tls', via: 'credproxy', port: 'owned', path: '/small', entity: true, expect: 'credential', driver: 'undici-https' },
  // Only with --workers N (they need Redis): the same command, one process and N.
  { name: 'injection-redis', label: 'credproxy start on Redis, 1 process: injection', group: 'small', via: 'credproxy', port: 'owned', path: '/small', entity: true, expect: 'credential', process: 'redis1' },
  { name: 'injection-workers', label: 'credproxy start on Redis, --workers N: injection', group: 'small', via: 'credproxy', port: 'owned', path: '/small', entity: true, expect: 'credential', process: 'workers' },
  // Only with --postgres URL: the same command on a PostgreSQL store, beside injection-redis.
  { name: 'injection-postgres', label: 'credproxy start on PostgreSQL, 1 process: injection', group: 'small', via: 'credproxy', port: 'owned', path: '/small', entity: true, expect: 'credential', process: 'postgres1' },
];

/** The cases a run has: enabled by its options (Redis, PostgreSQL) and named by --only, in table order. */
export function selectCases(opts: Pick<BenchOptions, 'only' | 'workers' | 'postgres'>): CaseDef[] {
  const unknown = (opts.only ?? []).filter((n) => !CASES.some((c) => c.name === n));
  if (unknown.length > 0) throw new Error(`--only: no case named ${unknown.join(', ')} (cases: ${CASES.map((c) => c.name).join(', ')})`);
  const enabled = (c: CaseDef) => c.process === undefined || (c.process === 'postgres1' ? opts.postgres !== undefined : opts.workers > 0);
  return CASES.filter((c) => enabled(c) && (opts.only === undefined || opts.only.includes(c.name))).map((c) =>
    c.process === 'workers' ? { ...c, label: c.label.replace('--workers N', `--workers ${opts.workers}`) } : c,
  );
}

/**
 * Which load generator drives a case: the plain small-body cases of the bench's own processes
 * (direct, reference, floor, passthrough and the injection cases) run on `generator` (wrk when
 * it is installed); bodies, the undici-driven TLS pair and `credproxy start` comparisons stay
 * on what they were measured with.
 */
export function generatorFor(c: CaseDef, generator: 'wrk' | 'autocannon'): 'wrk' | 'autocannon' | CaseDef['driver'] {
  if (c.driver) return c.driver;
  return c.group === 'small' && !c.upload && c.process === undefined ? generator : 'autocannon';
}
