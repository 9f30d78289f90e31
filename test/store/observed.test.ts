import pino from 'pino';
import t, { type Test } from 'tap';
import type { Settings } from '../../src/config/types.js';
import { Metrics } from '../../src/metrics.js';
import { COUNTS_KEY, observeStore } from '../../src/store/observed.js';
import { openStore } from '../../src/store/open.js';
import type { Connection, ConnectionStatus } from '../../src/store/types.js';
import { LogCapture, SECRET_KEY } from '../support/servers.js';
import { sqliteUrl } from '../support/sqlite.js';

// A dead store's errors and the counts across a restart are in test/metrics.test.ts.
async function observed(t: Test) {
  const settings = { store: sqliteUrl(t), store_prefix: 'credproxy' } as Settings;
  const { store: inner } = await openStore(settings, { CREDPROXY_SECRET_KEY: SECRET_KEY }, pino({ level: 'silent' }));
  t.teardown(() => inner.close());
  const metrics = new Metrics();
  const changes: Array<[string, ConnectionStatus | undefined, ConnectionStatus]> = [];
  const logs = new LogCapture();
  const store = observeStore(inner, metrics, pino(logs), (c, from) => changes.push([`${c.entity}/${c.label ?? ''}`, from, c.status]));
  return { store, inner, metrics, changes, logs };
}

const conn = (entity: string, status: ConnectionStatus, extra: Partial<Connection> = {}): Connection => ({
  entity,
  integration: 'demo',
  scheme: 'bearer',
  params: {},
  status,
  credentials: { token: `tok-${entity}` },
  created_at: 1,
  updated_at: 1,
  ...extra,
});

t.test('counts by status follow puts, status changes and deletes, and are kept in the store', async (t) => {
  const { store, inner, metrics, changes } = await observed(t);
  await store.put(conn('alice', 'active'));
  await store.put(conn('bob', 'active'));
  await store.put(conn('alice', 'active', { label: 'work' }));
  t.same(await metrics.countConnections!(), { active: 3 }, 'a labelled connection is one more');
  await store.put(conn('alice', 'active', { credentials: { token: 'rotated' }, updated_at: 2 }));
  t.same(await metrics.countConnections!(), { active: 3 }, 'a new token in the same status moves nothing');
  await store.put(conn('bob', 'expired'));
  t.same(await metrics.countConnections!(), { active: 2, expired: 1 });
  t.ok(await store.delete('bob', 'demo'));
  t.notOk(await store.delete('nobody', 'demo'));
  t.same(await metrics.countConnections!(), { active: 2, expired: 0 });
  t.same(JSON.parse((await inner.kv.get(COUNTS_KEY))!), { active: 2, expired: 0 }, 'the record is in the store itself');
  t.same(changes, [
    ['alice/', undefined, 'active'],
    ['bob/', undefined, 'active'],
    ['alice/work', undefined, 'active'],
    ['bob/', 'active', 'expired'],
  ], 'status changes are announced, token rotations are not');
});

t.test('every call is timed by op; members the wrapper does not know pass through', async (t) => {
  const { store, inner, metrics } = await observed(t);
  await store.put(conn('carol', 'active'));
  t.equal((await store.get('carol', 'demo'))?.credentials.token, 'tok-carol');
  await store.list('carol', ['demo']);
  await store.ping();
  const text = await metrics.registry.metrics();
  for (const op of ['get', 'put', 'list', 'ping']) t.match(text, new RegExp(`credproxy_store_duration_seconds_count\\{op="${op}"\\} [1-9]`), op);
  t.equal(store.kv, inner.kv, 'kv is the store’s own');
  t.equal(store.locks, inner.locks);
});

t.test('a counts record that is not JSON reads as no counts, and is rebuilt from the next write', async (t) => {
  const { store, inner, metrics } = await observed(t);
  await inner.kv.set(COUNTS_KEY, 'garbage{');
  t.same(await metrics.countConnections!(), {});
  await store.put(conn('dave', 'active'));
  t.same(await metrics.countConnections!(), { active: 1 });
});
