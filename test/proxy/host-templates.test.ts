import t from 'tap';
import { loadConfig, ConfigError } from '../support/config.js';
import { compileHostTemplate, matchHostTemplate, renderHost } from '../../src/config/host-template.js';
import { RoutingTable } from '../../src/proxy/match.js';
import { configDir, errorOf, startProxy, startUpstream, viaProxy, type Upstream } from '../support/servers.js';

/**
 * Host templates: `{{tenant}}` fills one DNS label, and a credential goes only to the host
 * the connection's own params produce. `*.localhost` does not resolve on this machine, so the
 * two-tenant test uses the loopback addresses 127.0.0.2 and 127.0.0.3 as its hosts (a template
 * `127.0.0.{{tenant}}:PORT`, tenants "2" and "3"), with one real upstream on each, same port.
 */

const ZENDESK = [
  'hosts: ["{{subdomain}}.zendesk.test"]',
  'upstream: http',
  'params:',
  '  - { name: subdomain, description: "your Zendesk subdomain" }',
  'auth: { type: bearer }',
  '',
].join('\n');

t.test('template → regex: each param is exactly one DNS label', async (t) => {
  const c = compileHostTemplate('{{subdomain}}.zendesk.com');
  t.same(matchHostTemplate(c, 'acme.zendesk.com'), { subdomain: 'acme' });
  t.same(matchHostTemplate(c, 'a-1.zendesk.com'), { subdomain: 'a-1' });
  for (const h of ['a.b.zendesk.com', 'zendesk.com', '.zendesk.com', 'acme.zendesk.com.evil.test', 'acmexzendesk.com', '-a.zendesk.com', 'a-.zendesk.com', 'ac_me.zendesk.com']) {
    t.equal(matchHostTemplate(c, h), undefined, `${h} does not fit`);
  }
  const twice = compileHostTemplate('{{a}}.x.{{a}}.example');
  t.same(matchHostTemplate(twice, 'p.x.p.example'), { a: 'p' });
  t.equal(matchHostTemplate(twice, 'p.x.q.example'), undefined, 'one param, one value');
  const mixed = compileHostTemplate('api-{{region}}.example.com');
  t.same(matchHostTemplate(mixed, 'api-eu.example.com'), { region: 'eu' });
  t.equal(renderHost('{{subdomain}}.zendesk.com', { subdomain: 'acme' }), 'acme.zendesk.com');
  t.equal(renderHost('{{subdomain}}.zendesk.com', {}), undefined);
});

t.test('RoutingTable matches template hosts after exact and wildcard ones', async (t) => {
  const config = loadConfig(
    configDir('store: memory\n', {
      zendesk: ZENDESK,
      fixed: 'hosts: [status.zendesk.test]\nupstream: http\nauth: { type: bearer }\n',
      ported: 'hosts: ["{{t}}.ported.test:8443"]\nparams: [{ name: t }]\nauth: { type: bearer }\n',
    }),
    { env: {} },
  );
  const routes = new RoutingTable(config.integrations.values());
  const m = routes.match('acme.zendesk.test', undefined, '/api/v2');
  t.equal(m?.integration.name, 'zendesk');
  t.same(m?.hostParams, { subdomain: 'acme' });
  t.equal(routes.match('status.zendesk.test', undefined, '/')?.integration.name, 'fixed', 'an exact host wins');
  t.equal(routes.match('status.zendesk.test', undefined, '/')?.hostParams, undefined);
  t.equal(routes.match('a.b.zendesk.test', undefined, '/'), undefined);
  t.equal(routes.match('acme.zendesk.test.evil.test', undefined, '/'), undefined);
  t.equal(routes.match('acme.zendesk.test', 8080, '/'), undefined, 'another port is another origin');
  t.same(routes.match('x.ported.test', 8443, '/')?.hostParams, { t: 'x' });
  t.equal(routes.match('x.ported.test', undefined, '/'), undefined);
});

t.test('config: template names in hosts and URLs must be declared params; host-param defaults are labels', async (t) => {
  const bad = configDir('store: memory\n', {
    z: [
      'hosts: ["{{subdomain}}.zendesk.test"]',
      'params: [{ name: subdomain, default: "a.b" }]',
      'auth:',
      '  - type: oauth2',
      '    authorize_url: "https://{{subdomain}}.zendesk.test/oauth/authorizations/new"',
      '    token_url: "https://{{tenant}}.zendesk.test/oauth/tokens"',
      '    client_id: c',
      '',
    ].join('\n'),
  });
  const err = t.throws(() => loadConfig(bad, { env: {} })) as ConfigError;
  t.ok(err instanceof ConfigError);
  t.match(err.message, /z\.yaml:2: params\[0\]\.default: "subdomain" names a host/);
  t.match(err.message, /z\.yaml:6: token_url: \{\{tenant\}\} is not a declared param/);
});

/** Two upstreams on one port, at 127.0.0.2 and 127.0.0.3. */
async function tenantUpstreams(): Promise<[Upstream, Upstream]> {
  for (let attempt = 0; ; attempt++) {
    const two = await startUpstream(undefined, { host: '127.0.0.2' });
    try {
      return [two, await startUpstream(undefined, { host: '127.0.0.3', port: two.port })];
    } catch (err) {
      await two.close();
      if (attempt >= 5) throw err;
    }
  }
}

t.test('two tenants on one host template: each request carries only its own connection credential', async (t) => {
  const [two, three] = await tenantUpstreams();
  const dir = configDir('store: memory\n', {
    tenants: [
      `hosts: ["127.0.0.{{tenant}}:${two.port}"]`,
      'upstream: http',
      'params: [{ name: tenant, pattern: "^[0-9]{1,3}$" }]',
      'auth: { type: bearer }',
      'inject: { headers: { Authorization: "Bearer {{token}}", X-Tenant: "{{tenant}}" } }',
      '',
    ].join('\n'),
  });
  const proxy = await startProxy(dir);
  t.teardown(async () => {
    await proxy.close();
    await Promise.all([two.close(), three.close()]);
  });
  t.equal((await proxy.connect('alice', 'tenants', { params: { tenant: '2' }, credentials: { token: 'tok-alice-2' } })).status, 200);
  t.equal((await proxy.connect('bob', 'tenants', { params: { tenant: '3' }, credentials: { token: 'tok-bob-3' } })).status, 200);
  const as = (entity: string, host: string) => viaProxy(proxy.port, `http://${host}:${two.port}/api`, { headers: { 'X-Entity-Id': entity } });

  t.equal((await as('alice', '127.0.0.2')).status, 200);
  t.equal(two.seen.at(-1)!.headers.authorization, 'Bearer tok-alice-2');
  t.equal(two.seen.at(-1)!.headers['x-tenant'], '2', 'params fill inject templates too');
  t.equal((await as('bob', '127.0.0.3')).status, 200);
  t.equal(three.seen.at(-1)!.headers.authorization, 'Bearer tok-bob-3');

  const seen = two.seen.length + three.seen.length;
  const cross = await as('alice', '127.0.0.3');
  const e = errorOf(cross);
  t.same([e.status, e.code, e.header], [424, 'connection_missing', 'connection_missing'], "alice's tenant-2 connection never goes to tenant 3");
  t.match(e.message, /host 127\.0\.0\.3/);
  t.match(e.message, /for 127\.0\.0\.2/);
  t.equal(errorOf(await as('bob', '127.0.0.2')).code, 'connection_missing');
  t.equal(two.seen.length + three.seen.length, seen, 'nothing was forwarded for the mismatches');
  t.notMatch(proxy.logs.text, /tok-alice|tok-bob/);
});

t.test('a template host with no matching connection is 424 before any network; hostile params are refused when stored', async (t) => {
  const dir = configDir('store: memory\npublic_url: http://127.0.0.1:1\n', {
    zendesk: [
      'hosts: ["{{subdomain}}.zendesk.test"]',
      'upstream: http',
      'params: [{ name: subdomain }]',
      'auth:',
      '  - type: oauth2',
      '    authorize_url: "https://{{subdomain}}.zendesk.test/oauth/authorizations/new"',
      '    token_url: "https://{{subdomain}}.zendesk.test/oauth/tokens"',
      '    client_id: c',
      '  - type: bearer',
      '',
    ].join('\n'),
  });
  const proxy = await startProxy(dir);
  t.teardown(() => proxy.close());
  t.equal((await proxy.connect('alice', 'zendesk', { scheme: 'bearer', params: { subdomain: 'acme' }, credentials: { token: 'tok-acme' } })).status, 200);
  const other = errorOf(await viaProxy(proxy.port, 'http://other.zendesk.test/api/v2/tickets', { headers: { 'X-Entity-Id': 'alice' } }));
  t.same([other.status, other.code], [424, 'connection_missing']);
  t.match(other.message, /other\.zendesk\.test/);
  const nobody = errorOf(await viaProxy(proxy.port, 'http://acme.zendesk.test/', { headers: { 'X-Entity-Id': 'carol' } }));
  t.same([nobody.status, nobody.code], [424, 'connection_missing']);

  for (const hostile of ['acme.evil.test', 'a/b', 'a@b', 'a:1', 'ACME', '', '-a', 'a b', 'a\r\nx', 'a?b', 'a#b', 'a%2eb']) {
    const put = await proxy.connect('mallory', 'zendesk', { scheme: 'bearer', params: { subdomain: hostile }, credentials: { token: 't' } });
    t.equal(put.status, 400, `PUT ${JSON.stringify(hostile)} refused`);
    const link = await proxy.admin('POST', '/api/entities/mallory/connections/zendesk/connect', { params: { subdomain: hostile } });
    t.equal(link.status, 400, `connect link ${JSON.stringify(hostile)} refused`);
    t.match(((await link.json()) as { error: { message: string } }).error.message, /params\.subdomain/);
  }
  t.equal((await proxy.admin('GET', '/api/entities/mallory/connections/zendesk')).status, 404, 'nothing stored for mallory');
  const shown = (await (await proxy.admin('GET', '/api/entities/alice/connections/zendesk')).json()) as { params: unknown; scheme: string };
  t.same(shown.params, { subdomain: 'acme' }, 'params are stored and shown');
  t.equal(shown.scheme, 'bearer');
});
