import t from 'tap';
import { configDir, startProxy, type TestProxy } from '../support/servers.js';
import { sqliteStore } from '../support/sqlite.js';

/**
 * The admin API for labelled connections: the contract paths with `?label=` address one,
 * without it they address the default connection exactly as before labels existed.
 */

let proxy: TestProxy;
t.before(async () => {
  // SQLite, the default store: labelled connections and their listing are what it stores.
  proxy = await startProxy(configDir(sqliteStore(t), { mail: 'hosts: ["mail.test"]\nauth: { type: bearer }\n', other: 'hosts: ["other.test"]\nauth: { type: bearer }\n' }));
});
t.teardown(() => proxy.close());

const path = (entity: string, integration: string, label?: string) => `/api/entities/${entity}/connections/${integration}${label === undefined ? '' : `?label=${encodeURIComponent(label)}`}`;
const json = async (r: Response) => (await r.json()) as Record<string, unknown>;

t.test('CRUD of labelled connections beside the default one', async (t) => {
  const def = await proxy.admin('PUT', path('alice', 'mail'), { credentials: { token: 'tok-default' } });
  t.equal(def.status, 200);
  t.match(await json(def), { entity: 'alice', integration: 'mail', label: null, status: 'active' });

  const work = await proxy.admin('PUT', path('alice', 'mail', 'work'), { credentials: { token: 'tok-work' } });
  t.equal(work.status, 200);
  const workView = await json(work);
  t.match(workView, { entity: 'alice', integration: 'mail', label: 'work', status: 'active', fields: ['token'] });
  t.notMatch(JSON.stringify(workView), /tok-work/, 'never a secret');
  t.equal((await proxy.admin('PUT', path('alice', 'mail', 'alice@home.example'), { credentials: { token: 'tok-home' } })).status, 200, 'an e-mail address is a label');
  t.equal((await proxy.admin('PUT', path('alice', 'other', 'work'), { credentials: { token: 'tok-other' } })).status, 200);

  t.match(await json(await proxy.admin('GET', path('alice', 'mail', 'work'))), { label: 'work', fields: ['token'] });
  t.match(await json(await proxy.admin('GET', path('alice', 'mail'))), { label: null }, 'the contract path: the default connection');
  const missing = await proxy.admin('GET', path('alice', 'mail', 'travel'));
  t.equal(missing.status, 404);
  t.match(await json(missing), { error: { code: 'not_found', message: 'entity "alice" has no connection labelled "travel" for "mail"' } });

  const list = await json(await proxy.admin('GET', '/api/entities/alice/connections'));
  t.same(
    (list.connections as Array<{ integration: string; label: string | null }>).map((c) => [c.integration, c.label]),
    [
      ['mail', null],
      ['mail', 'alice@home.example'],
      ['mail', 'work'],
      ['other', 'work'],
    ],
  );

  // Replacing keeps created_at, as for the default connection.
  const first = (await json(await proxy.admin('GET', path('alice', 'mail', 'work')))).created_at;
  await proxy.admin('PUT', path('alice', 'mail', 'work'), { credentials: { token: 'tok-work-2' } });
  t.equal((await json(await proxy.admin('GET', path('alice', 'mail', 'work')))).created_at, first);
  t.equal((await proxy.runtime.store.get('alice', 'mail', { label: 'work' }))?.credentials.token, 'tok-work-2');

  t.equal((await proxy.admin('DELETE', path('alice', 'mail', 'work'))).status, 204);
  t.equal((await proxy.admin('GET', path('alice', 'mail', 'work'))).status, 404);
  t.equal((await proxy.admin('GET', path('alice', 'mail'))).status, 200, 'deleting a label leaves the default');
  t.equal((await proxy.admin('DELETE', path('alice', 'mail'))).status, 204);
  t.equal((await proxy.admin('GET', path('alice', 'mail', 'alice@home.example'))).status, 200, 'deleting the default leaves the labels');
  const after = await json(await proxy.admin('GET', '/api/entities/alice/connections'));
  t.same((after.connections as Array<{ integration: string; label: string | null }>).map((c) => [c.integration, c.label]), [
    ['mail', 'alice@home.example'],
    ['other', 'work'],
  ]);
});

t.test('a malformed or repeated label is 400 bad_request saying what a label is', async (t) => {
  for (const [method, q] of [
    ['PUT', '?label='],
    ['GET', '?label=has%20space'],
    ['DELETE', '?label=a%2Fb'],
    ['GET', `?label=${'x'.repeat(65)}`],
  ] as const) {
    const r = await proxy.admin(method, `/api/entities/bob/connections/mail${q}`, method === 'PUT' ? { credentials: { token: 'x' } } : undefined);
    t.equal(r.status, 400, `${method} ${q}`);
    t.match(await json(r), { error: { code: 'bad_request', message: /^the label query parameter: a connection label is 1 to 64 letters, digits and \._:@\+- starting with a letter or digit/ } });
  }
  const twice = await proxy.admin('GET', '/api/entities/bob/connections/mail?label=a&label=b');
  t.equal(twice.status, 400);
  t.match(await json(twice), { error: { message: /given more than once/ } });
  t.same((await json(await proxy.admin('GET', '/api/entities/bob/connections'))).connections, [], 'nothing was stored');
});
