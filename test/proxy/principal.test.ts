import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { isCredproxyError } from '../../src/errors.js';
import { authenticate, connectPrincipal, resolvePrincipal } from '../../src/proxy/principal.js';
import type { RequestInfo } from '../../src/proxy/types.js';
import { issueToken } from '../../src/tokens/entity-tokens.js';
import { configDir, integrationYaml, startProxy, type TestProxy } from '../support/servers.js';

const KEY = 'agent-key-0123456789abcdef';
const basic = (s: string) => `Basic ${Buffer.from(s).toString('base64')}`;

/**
 * The principal step on a real runtime, fed by real requests: a small server runs
 * authenticate → resolvePrincipal (or connectPrincipal for `?connect`) on each one and
 * answers what it decided, or the error code.
 */
async function harness(t: { teardown(fn: () => unknown): void }): Promise<{ proxy: TestProxy; ask(headers: Record<string, string>, opts?: { path?: string; integration?: boolean; connect?: boolean }): Promise<Record<string, unknown>> }> {
  const dir = configDir(`store: memory\nclients:\n  - { name: agent, key: "${KEY}", entities: ["alice*"] }\n`, {
    svc: integrationYaml(['svc.example'], '{ type: bearer }'),
  });
  const proxy = await startProxy(dir);
  t.teardown(() => proxy.close());
  const rt = proxy.runtime;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const run = async () => {
      if (url.searchParams.has('connect')) {
        return { ...connectPrincipal(rt, req, undefined).principal, token: undefined };
      }
      const info: RequestInfo = { entity: undefined, integration: 'passthrough', host: '', path: '' };
      const caller = await authenticate(rt, req);
      const integration = url.searchParams.has('integration') ? rt.current.config.integrations.get('svc') : undefined;
      const { principal, outgoing } = await resolvePrincipal(rt, req, caller, { integration, pathWithSearch: url.pathname + url.search, hostname: 'svc.example', info });
      return { ...principal, token: principal.token?.id, info, outgoingPath: outgoing.pathWithSearch, authorization: outgoing.rawHeaders.includes('authorization') };
    };
    run().then(
      (body) => res.end(JSON.stringify(body)),
      (err: unknown) => res.end(JSON.stringify({ error: isCredproxyError(err) ? err.code : String(err) })),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const port = (server.address() as AddressInfo).port;
  return {
    proxy,
    async ask(headers, opts = {}) {
      const q = [opts.integration ? 'integration' : '', opts.connect ? 'connect' : ''].filter(Boolean).join('&');
      const r = await fetch(`http://127.0.0.1:${port}${opts.path ?? '/x'}${q ? `?${q}` : ''}`, { headers });
      return (await r.json()) as Record<string, unknown>;
    },
  };
}

t.test('the entity: the header, else the proxy user; the client key first, and its entity patterns', async (t) => {
  const { ask } = await harness(t);
  t.same(await ask({}), { error: 'proxy_auth_required' }, 'no key: 407 before anything else');
  t.same(await ask({ 'x-entity-id': 'alice', 'proxy-authorization': 'Bearer wrong' }), { error: 'proxy_auth_required' });
  const byHeader = await ask({ 'x-entity-id': 'alice', 'proxy-authorization': `Bearer ${KEY}` });
  t.match(byHeader, { client: 'agent', entity: 'alice', via: 'header', label: undefined });
  const byUser = await ask({ 'proxy-authorization': basic(`alice2:${KEY}`) });
  t.match(byUser, { client: 'agent', entity: 'alice2', via: 'proxy-user' });
  t.match(await ask({ 'x-entity-id': 'alice', 'proxy-authorization': basic(`alice2:${KEY}`) }), { entity: 'alice', via: 'header' }, 'the header wins');
  t.same(await ask({ 'x-entity-id': 'bob', 'proxy-authorization': `Bearer ${KEY}` }), { error: 'entity_denied' }, 'outside the client patterns');
  t.same(await ask({ 'x-entity-id': 'a b', 'proxy-authorization': `Bearer ${KEY}` }), { error: 'bad_request' });
});

t.test('on an integration host: entity required, label from X-Connection-Label, info filled as it goes', async (t) => {
  const { ask } = await harness(t);
  t.same(await ask({ 'proxy-authorization': `Bearer ${KEY}` }, { integration: true }), { error: 'entity_required' });
  const labelled = await ask({ 'x-entity-id': 'alice', 'x-connection-label': 'work', 'proxy-authorization': `Bearer ${KEY}` }, { integration: true });
  t.match(labelled, { entity: 'alice', label: 'work', info: { entity: 'alice', integration: 'svc', label: 'work' } });
  t.match(await ask({ 'x-entity-id': 'alice', 'x-connection-label': 'work', 'proxy-authorization': `Bearer ${KEY}` }), { label: undefined }, 'a label matters only where a connection is used');
  t.same(await ask({ 'x-entity-id': 'alice', 'x-connection-label': '-', 'proxy-authorization': `Bearer ${KEY}` }, { integration: true }), { error: 'bad_request' });
});

t.test('an entity token stands in for the client key and names the entity; it is taken off the request', async (t) => {
  const { proxy, ask } = await harness(t);
  const tok = await issueToken(proxy.runtime.store.kv, 'bob', { integrations: ['svc'], label: 'home' });
  const asProxy = await ask({ 'proxy-authorization': `Bearer ${tok.token}` }, { integration: true });
  t.match(asProxy, { client: `token:${tok.id}`, entity: 'bob', via: 'token', label: 'home', token: tok.id }, 'not limited by the client patterns: the token is for bob');
  t.same(await ask({ authorization: `Bearer ${tok.token}`, 'proxy-authorization': `Bearer ${KEY}` }, { integration: true }), { error: 'entity_denied' }, 'with a client key, the token entity must be one the client may act for');
  const own = await issueToken(proxy.runtime.store.kv, 'alice3', {});
  const inHeader = await ask({ authorization: `Bearer ${own.token}`, 'proxy-authorization': `Bearer ${KEY}` }, { integration: true });
  t.match(inHeader, { client: 'agent', entity: 'alice3', via: 'token', authorization: false }, 'in the replaced header, taken off');
  t.same(await ask({ 'x-entity-id': 'carol', 'proxy-authorization': `Bearer ${tok.token}` }, { integration: true }), { error: 'entity_denied' }, 'the header may not name another entity');
  t.same(await ask({ 'x-connection-label': 'work', 'proxy-authorization': `Bearer ${tok.token}` }, { integration: true }), { error: 'entity_denied' }, 'nor another label');
  t.same(await ask({ 'proxy-authorization': 'Bearer cpx_forged' }), { error: 'entity_denied' });
});

t.test('CONNECT: the client key, and the proxy user it may act for', async (t) => {
  const { ask } = await harness(t);
  t.same(await ask({}, { connect: true }), { error: 'proxy_auth_required' });
  t.match(await ask({ 'proxy-authorization': basic(`alice:${KEY}`) }, { connect: true }), { client: 'agent', entity: 'alice', via: 'proxy-user' });
  t.same(await ask({ 'proxy-authorization': basic(`bob:${KEY}`) }, { connect: true }), { error: 'entity_denied' });
  t.match(await ask({ 'proxy-authorization': `Bearer ${KEY}` }, { connect: true }), { client: 'agent', via: undefined });
});
