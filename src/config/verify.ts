import { pathMatches } from './paths.js';
import { parseHostPattern, type HostPattern } from './hosts.js';
import type { VerifyConfig } from './types.js';

interface RawVerify {
  method?: VerifyConfig['method'];
  path: string;
  expect?: number[];
  host?: string;
}

/**
 * The `verify` request of an integration, checked against what the integration owns: it may
 * only go where a request through the proxy would get these credentials (one of `hosts`,
 * under `paths`), so verifying can never send a credential anywhere new.
 */
export function checkVerify(
  raw: RawVerify | undefined,
  hosts: readonly HostPattern[],
  paths: readonly string[],
  defaultPort: number,
  problem: (key: string[], message: string) => void,
): VerifyConfig | undefined {
  if (!raw) return undefined;
  const pathOnly = raw.path.split('?')[0]!;
  if (!paths.some((p) => pathMatches(p, pathOnly))) {
    problem(['path'], `verify.path: ${pathOnly} is not under the integration's paths (${paths.join(', ')}), so it would not get these credentials`);
  }
  let host: HostPattern | undefined;
  if (raw.host === undefined) {
    host = hosts.find((h) => !h.wildcard);
    if (!host) problem([], 'verify.host: every hosts entry is a wildcard; name the host to verify against');
  } else {
    const parsed = parseHostPattern(raw.host, defaultPort);
    if (typeof parsed === 'string') problem(['host'], `verify.host: ${parsed}`);
    else if (parsed.wildcard) problem(['host'], 'verify.host: a wildcard names no host to send the request to');
    else if (!hosts.some((h) => owns(h, parsed))) problem(['host'], `verify.host: "${raw.host}" is not one of the integration's hosts`);
    else host = parsed;
  }
  if (!host) return undefined;
  return { method: raw.method ?? 'GET', path: raw.path, expect: raw.expect, host };
}

/** Whether a `hosts` entry covers the verify host: the same entry, or a concrete host under a wildcard. */
function owns(entry: HostPattern, host: HostPattern): boolean {
  if (entry.port !== host.port) return false;
  if (entry.wildcard) return !host.template && host.host.endsWith(`.${entry.host}`);
  return entry.host === host.host && entry.template === host.template;
}
