import pino from 'pino';
import t from 'tap';
import type { Settings } from '../../src/config/types.js';
import { isShared, openBackend, openStore, requireSharedSecrets } from '../../src/store/open.js';
import { SECRET_KEY } from '../support/servers.js';
import { sqliteUrl } from '../support/sqlite.js';

// The storage key and the data folder are in test/store/keyv-store.test.ts; this is the choice
// of backend and the rules for shared stores.
const log = pino({ level: 'silent' });
const settings = (store: string, extra: Partial<Settings> = {}) => ({ store, store_prefix: 'credproxy', ...extra }) as Settings;

t.test('shared stores (Redis, PostgreSQL) need the key and admin token given, and say which are missing', async (t) => {
  for (const url of ['redis://h:6379', 'rediss://h', 'postgres://h/db', 'postgresql://h/db']) t.ok(isShared(settings(url)), url);
  for (const url of ['memory', 'sqlite:/tmp/x.db']) t.notOk(isShared(settings(url)), url);
  const err = t.throws(() => requireSharedSecrets(settings('redis://user:hunter2@h:6379'), {})) as unknown as Error;
  t.match(err.message, /CREDPROXY_SECRET_KEY .*; CREDPROXY_ADMIN_TOKEN/);
  t.notMatch(err.message, 'hunter2', 'the store URL is shown without its password');
  t.throws(() => requireSharedSecrets(settings('redis://h'), { CREDPROXY_SECRET_KEY: SECRET_KEY }), { message: /CREDPROXY_ADMIN_TOKEN/ });
  t.doesNotThrow(() => requireSharedSecrets(settings('redis://h', { admin_token: 'x'.repeat(24) } as Partial<Settings>), { CREDPROXY_SECRET_KEY: SECRET_KEY }));
  t.doesNotThrow(() => requireSharedSecrets(settings('redis://h'), { CREDPROXY_SECRET_KEY: SECRET_KEY, CREDPROXY_ADMIN_TOKEN: 'y'.repeat(24) }));
  await t.rejects(openStore(settings('postgres://h/db'), {}, log), /shared by several instances/, 'checked before any connection is tried');
});

t.test('openBackend lists the keys under its own prefix only, without it (what migrate copies)', async (t) => {
  for (const url of [sqliteUrl(t), 'memory']) {
    const mine = await openBackend(url, 'pa', log);
    t.teardown(() => mine.options.onClose?.());
    await mine.keyv.set('conn:alice', 'v1');
    await mine.keyv.set('state:x', 'v2');
    const keys: string[] = [];
    for await (const k of mine.keys()) keys.push(k);
    t.same(keys.sort(), ['conn:alice', 'state:x'], url.startsWith('sqlite:') ? 'sqlite' : url);
    t.equal(await mine.keyv.get('conn:alice'), 'v1');
  }
  const path = sqliteUrl(t);
  const a = await openBackend(path, 'pa', log);
  const b = await openBackend(path, 'pb', log);
  t.teardown(async () => {
    await a.options.onClose?.();
    await b.options.onClose?.();
  });
  await a.keyv.set('k', 'from-a');
  await b.keyv.set('k', 'from-b');
  const bKeys: string[] = [];
  for await (const k of b.keys()) bKeys.push(k);
  t.same(bKeys, ['k'], 'one file, two prefixes: each sees its own');
  t.equal(await a.keyv.get('k'), 'from-a');
});
