import { Backoff } from './backoff.js';
import { SingleFlight } from './single-flight.js';

/** What a refresh under way replaces. */
export interface RefreshRun {
  token: string | undefined;
  /** an upstream refused the token (rather than it being about to expire) */
  refused: boolean;
}

/**
 * Refresh bookkeeping of one running credproxy (`rt.refresh`, made with the runtime): locks,
 * backoff, tokens known stale.
 */
export interface RefreshState {
  /**
   * One refresh at a time per connection within this process (one lock attempt per
   * instance); each run notes the access token it replaces, and whether an upstream refused
   * it, so that requests about to use that token wait for its successor instead.
   */
  readonly local: SingleFlight<RefreshRun>;
  readonly backoff: Backoff;
  /** access tokens an upstream refused while the request could not be replayed: the next use refreshes first */
  readonly stale: Set<string>;
  /**
   * Connections for which this instance announced `connection.refresh_failed` and has not yet
   * seen a working refresh: one event per failure streak, not one per attempt, and
   * `connection.recovered` exactly when a streak ends.
   */
  readonly failing: Set<string>;
}

export function newRefreshState(): RefreshState {
  return { local: new SingleFlight<RefreshRun>(), backoff: new Backoff(), stale: new Set(), failing: new Set() };
}
