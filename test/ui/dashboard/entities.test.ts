import t from 'tap';
import { get, signIn } from '../../support/dashboard.js';
import { configDir, startProxy } from '../../support/servers.js';
import { sqliteStore } from '../../support/sqlite.js';

/**
 * The list of all entities (the Entities page without an id) and, on the Integrations page,
 * which connections use each integration: real HTTP against a proxy on the default store
 * (SQLite), with more connections than one page holds.
 */

const rows = (html: string) => [...html.matchAll(/<tr><td><a href="\/ui\/entities\?entity=([^"]+)"/g)].map((m) => decodeURIComponent(m[1]!));
const nextLink = (html: string) => /<a href="([^"]+)" rel="next">/.exec(html)?.[1]?.replace(/&amp;/g, '&');

t.test('every entity, a page at a time, filtered; the integrations page names who uses each', async (t) => {
  const p = await startProxy(
    configDir(`${sqliteStore(t)}`, {
      crm: 'hosts: [crm.example]\nauth: { type: api_key }\n',
      mail: 'hosts: [mail.example]\nauth: { type: bearer }\n',
      unused: 'hosts: [unused.example]\nauth: { type: bearer }\n',
    }),
  );
  t.teardown(() => p.close());
  const now = Date.now();
  const writes = [];
  for (let i = 0; i < 70; i++) {
    const entity = `user-${String(i).padStart(2, '0')}@example.com`;
    writes.push(p.runtime.store.put({ entity, integration: 'crm', scheme: 'api_key', params: {}, status: i % 10 === 0 ? 'expired' : 'active', ...(i % 10 === 0 ? { reason: 'the key was revoked' } : {}), credentials: { api_key: `sk-never-shown-${i}` }, created_at: now, updated_at: now }));
  }
  writes.push(p.runtime.store.put({ entity: 'team:ops', integration: 'mail', label: 'shared', scheme: 'bearer', params: {}, status: 'active', credentials: { token: 'never-shown-token' }, created_at: now, updated_at: now }));
  await Promise.all(writes);
  const { cookie } = await signIn(p);

  const first = await (await get(p, '/ui/entities', cookie)).text();
  t.match(first, '<h2>All entities</h2>');
  t.equal(rows(first).length, 50, 'a page of 50');
  t.notMatch(first, /never-shown/, 'no secret in the list');
  const next = nextLink(first);
  t.ok(next, 'a link to the next page');
  const second = await (await get(p, next!, cookie)).text();
  t.equal(rows(second).length, 21);
  t.equal(nextLink(second), undefined, 'the last page has no next');
  t.match(second, /rel="first"/);
  const everyone = [...rows(first), ...rows(second)];
  t.equal(new Set(everyone).size, 71, 'every connection once');
  t.ok(everyone.includes('team:ops'));
  t.match(first + second, /<td><a href="\/ui\/entities\/team%3Aops\/connections\/mail\?label=shared">mail<\/a><\/td><td>shared<\/td><td class="status s-active">active/);

  const expired = await (await get(p, '/ui/entities?status=expired&integration=crm', cookie)).text();
  t.same(rows(expired), ['user-00@example.com', 'user-10@example.com', 'user-20@example.com', 'user-30@example.com', 'user-40@example.com', 'user-50@example.com', 'user-60@example.com']);
  t.match(expired, 'the key was revoked');
  t.same(rows(await (await get(p, '/ui/entities?label=shared', cookie)).text()), ['team:ops']);
  t.match(await (await get(p, '/ui/entities?integration=unused', cookie)).text(), 'No connection matches these filters.');

  const forged = await get(p, '/ui/entities?cursor=not*a*cursor', cookie);
  t.equal(forged.status, 400);
  t.match(await forged.text(), 'that page link is not valid here');
  t.equal((await get(p, '/ui/entities?status=sleeping', cookie)).status, 400);

  const integrations = await (await get(p, '/ui/integrations', cookie)).text();
  const section = (name: string) => new RegExp(`<h2 id="i-${name}">[\\s\\S]*?</section>`).exec(integrations)![0];
  t.equal([...section('crm').matchAll(/<li><a href="\/ui\/entities\/user-/g)].length, 5, 'crm: its first five connections');
  t.match(section('crm'), '<a href="/ui/entities?integration=crm">All connections to crm →</a>');
  t.match(section('mail'), /<code>team:ops<\/code> \(shared\)<\/a> <span class="status s-active">active/);
  t.notMatch(section('mail'), 'All connections', 'one connection: no link to more');
  t.match(section('unused'), '<dt>Used by</dt><dd>none yet</dd>');
});
