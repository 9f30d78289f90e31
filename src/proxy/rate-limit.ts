import type { IntegrationConfig, Settings } from '../config/types.js';
import { CredproxyError } from '../errors.js';
import { storeCall } from '../store/failure.js';
import type { RateLimitBackend } from '../store/rate-limit.js';

/**
 * `limits.requests_per_minute` (credproxy.yaml, for every integration) or the integration's
 * own `limits.requests_per_minute`: a token bucket per integration and entity. Over it: 429
 * rate_limited with Retry-After (whole seconds, at least 1), and nothing is forwarded.
 */
export function checkRate(backend: RateLimitBackend, settings: Settings, integration: IntegrationConfig, entity: string): Promise<void> | undefined {
  const perMinute = integration.limits?.requests_per_minute ?? settings.limits.requests_per_minute;
  // No limit configured (the default): nothing to wait for, no promise per request.
  if (perMinute === undefined) return undefined;
  return take(backend, integration, entity, perMinute);
}

function take(backend: RateLimitBackend, integration: IntegrationConfig, entity: string, perMinute: number): Promise<void> {
  return takeOrRefuse(
    backend,
    `${integration.name}:${entity}`,
    perMinute,
    (seconds) => `entity "${entity}" is over ${perMinute} requests per minute to integration "${integration.name}"; retry in ${seconds} s`,
    'the store does not answer (rate limits); the request was not forwarded',
  );
}

/**
 * One take from the bucket `key`; over it, 429 rate_limited with Retry-After in whole seconds
 * (at least 1) and the message `refused(seconds)`. The proxy's per-entity caps and the
 * dashboard's sign-in use it alike.
 */
export async function takeOrRefuse(backend: RateLimitBackend, key: string, perMinute: number, refused: (seconds: number) => string, unavailable?: string): Promise<void> {
  const decision = await storeCall('rate_limit', () => backend.take(key, perMinute), unavailable);
  if (decision.allowed) return;
  const seconds = Math.max(1, Math.ceil(decision.retryAfterMs / 1000));
  throw new CredproxyError('rate_limited', refused(seconds), { 'retry-after': String(seconds) });
}
