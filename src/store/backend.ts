import type Keyv from 'keyv';
import type { KeyvStoreOptions } from './keyv-store.js';

/**
 * A store's backend below the connection store: what credproxy migrate, rekey, export and the
 * start-up key check walk. Its own module so that they need not import open.ts, which uses them.
 */
export interface Backend {
  keyv: Keyv<string>;
  /** locks, invalidation, timings: what KeyvConnectionStore needs besides keyv */
  options: KeyvStoreOptions;
  /** every record's key under the prefix, as keyv names it (without `<prefix>:`) */
  keys(): AsyncGenerator<string>;
}
