import type { Logger } from 'pino';
import { aad, type StoredConnection } from './keyv-store.js';
import { KeyringError, UnreadableError, type Keyring } from './keyring.js';
import { parseConnKey } from './migrate.js';
import type { Backend } from './backend.js';

const SAMPLE = 20;
/** Keys looked at before giving up the search for connections (a store of mostly other records). */
const SCAN_LIMIT = 5_000;
/** How long the start-up sample may take at most. */
const BUDGET_MS = 3_000;

export interface KeyCheck {
  sampled: number;
  opened: number;
  /** key ids of sampled connections the ring cannot open, with how many each */
  unreadable: Record<string, number>;
}

/**
 * Opens up to `sample` stored connections with the keyring, counting what opens. Bounded in
 * time too: on a Redis shared with other applications, SCAN may walk many foreign keys
 * before it finds credproxy's, and a start must not wait for that.
 */
export async function sampleKeyring(backend: Pick<Backend, 'keyv' | 'keys'>, keyring: Keyring, sample = SAMPLE, budgetMs = BUDGET_MS): Promise<KeyCheck> {
  const out: KeyCheck = { sampled: 0, opened: 0, unreadable: {} };
  const it = backend.keys()[Symbol.asyncIterator]();
  const deadline = Date.now() + budgetMs;
  let seen = 0;
  try {
    while (out.sampled < sample && ++seen <= SCAN_LIMIT) {
      const next = it.next();
      next.catch(() => undefined); // settles after a timeout below: never an unhandled rejection
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), Math.max(0, deadline - Date.now()))));
      const r = await Promise.race([next, late]).finally(() => clearTimeout(timer));
      if (r === 'late' || r.done) break;
      const k = r.value;
      if (!k.startsWith('conn:')) continue;
      const parts = parseConnKey(k);
      const raw = await backend.keyv.get(k);
      if (!parts || raw === undefined) continue;
      out.sampled++;
      try {
        const s = JSON.parse(raw) as StoredConnection;
        keyring.open(s.sealed, aad(parts.entity, parts.integration, parts.label));
        out.opened++;
      } catch (err) {
        const id = err instanceof UnreadableError ? err.keyId : 'unknown format';
        out.unreadable[id] = (out.unreadable[id] ?? 0) + 1;
      }
    }
  } finally {
    void it.return?.(undefined).catch(() => undefined);
  }
  return out;
}

/**
 * Run at start: a keyring that opens none of a sample of stored connections is refused, so a
 * wrong key (a typo, another deployment's key) is not taken for an empty store whose every
 * connection then reads as broken. Some unreadable among readable ones (a key retired too
 * early) is logged and served: those connections show as failed with the reason.
 */
export async function checkKeyring(backend: Pick<Backend, 'keyv' | 'keys'>, keyring: Keyring, log: Logger): Promise<KeyCheck> {
  const check = await sampleKeyring(backend, keyring);
  const ids = Object.entries(check.unreadable).map(([id, n]) => `"${id}" (${n})`).join(', ');
  if (check.sampled > 0 && check.opened === 0) {
    throw new KeyringError(
      `the storage keys open none of ${check.sampled} stored connections sampled (they are sealed with key ${ids}; this keyring holds ${keyring.ids.map((i) => `"${i}"`).join(', ')}): ` +
        'set CREDPROXY_SECRET_KEY or CREDPROXY_SECRET_KEYS to the keys this store was written with. Refusing to start, so that a wrong key is not mistaken for an empty store',
    );
  }
  if (check.opened < check.sampled) {
    log.warn({ sampled: check.sampled, opened: check.opened, unreadable_key_ids: check.unreadable, keyring: keyring.ids }, 'store: some stored connections are sealed with keys that are not in the keyring; they show as failed until the key is added');
  }
  return check;
}
