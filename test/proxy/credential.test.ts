import Keyv from 'keyv';
import t from 'tap';
import { SCHEMES } from '../../src/auth/registry.js';
import { SchemeSet } from '../../src/auth/scheme-set.js';
import { isCredproxyError } from '../../src/errors.js';
import { resolveCredential } from '../../src/proxy/credential.js';
import { KeyvConnectionStore } from '../../src/store/keyv-store.js';
import type { Connection } from '../../src/store/types.js';
import { loadConfig } from '../support/config.js';
import { configDir } from '../support/servers.js';

/**
 * resolveCredential answers without a promise when it has everything at hand (a connection
 * in the store's cache, a scheme whose values need no waiting): the proxy's hot path. A
 * connection the cache does not hold is read from the store, behind a promise. Both give
 * the same injection, and the same documented errors (thrown, or rejected).
 */
const key = Buffer.alloc(32, 5);
const integrations = loadAndBuild();

function loadAndBuild() {
  const dir = configDir('store: memory\n', {
    svc: 'hosts: ["svc.example"]\nauth: { type: bearer }\n',
    tenant: 'hosts: ["{{sub}}.tenant.example"]\nparams: [{ name: sub }]\nauth: { type: api_key, fields: [api_key] }\ninject: { headers: { X-Key: "{{api_key}}" } }\n',
  });
  return new SchemeSet(SCHEMES).build(loadConfig(dir, { env: {} }));
}

const conn = (over: Partial<Connection> = {}): Connection => ({
  entity: 'alice',
  integration: 'svc',
  scheme: 'bearer',
  params: {},
  status: 'active',
  credentials: { token: 'tok-1' },
  created_at: 1,
  updated_at: 2,
  ...over,
});

t.test('a cached connection gives the injection without a promise; an uncached one behind a promise, the same', async (t) => {
  const keyv = new Keyv<string>({ throwOnErrors: true });
  const writer = new KeyvConnectionStore(keyv, key);
  await writer.put(conn());
  // Another store on the same backend: its cache is empty, so the first read goes to keyv.
  const reader = new KeyvConnectionStore(keyv, key);
  const svc = integrations.get('svc')!;
  const first = resolveCredential(reader, svc, 'alice');
  t.ok(first instanceof Promise, 'not cached yet: read from the store');
  const awaited = await first;
  t.same(awaited.headers, [['Authorization', 'authorization', 'Bearer tok-1']]);
  const second = resolveCredential(reader, svc, 'alice');
  t.notOk(second instanceof Promise, 'cached now: no promise');
  t.same((second as Awaited<typeof first>).headers, awaited.headers);
  t.equal((second as Awaited<typeof first>).connection, awaited.connection, 'the same cached connection object');
  await reader.close();
  const closed = resolveCredential(reader, svc, 'alice');
  t.ok(closed instanceof Promise, 'a closed store is not peeked: the read goes to it and fails');
  await t.rejects(closed as Promise<unknown>, { code: 'store_unavailable' });
  await writer.close();
});

t.test('the documented errors, thrown on the synchronous path and rejected on the other', async (t) => {
  const keyv = new Keyv<string>({ throwOnErrors: true });
  const store = new KeyvConnectionStore(keyv, key);
  const svc = integrations.get('svc')!;
  await t.rejects(resolveCredential(store, svc, 'bob') as Promise<unknown>, { code: 'connection_missing', message: /entity "bob" has no connection for integration "svc"/ });
  await store.put(conn({ status: 'expired' }));
  const code = (f: () => unknown) => {
    try {
      f();
      return undefined;
    } catch (err) {
      return isCredproxyError(err) ? err.code : String(err);
    }
  };
  t.equal(code(() => resolveCredential(store, svc, 'alice')), 'connection_expired', 'cached and expired: thrown at once');
  await store.put(conn({ status: 'initiated' }));
  t.equal(code(() => resolveCredential(store, svc, 'alice')), 'connection_missing');
  await store.close();
});

t.test('a templated host still gets only the connection whose params name it, cached or not', async (t) => {
  const keyv = new Keyv<string>({ throwOnErrors: true });
  const store = new KeyvConnectionStore(keyv, key);
  const tenant = integrations.get('tenant')!;
  const pattern = tenant.hosts[0]!;
  await store.put(conn({ integration: 'tenant', scheme: 'api_key', params: { sub: 'acme' }, credentials: { api_key: 'k-1' } }));
  const mine = await resolveCredential(store, tenant, 'alice', { host: { pattern, hostname: 'acme.tenant.example' } });
  t.same(mine.headers, [['X-Key', 'x-key', 'k-1']]);
  let refused: unknown;
  try {
    resolveCredential(store, tenant, 'alice', { host: { pattern, hostname: 'other.tenant.example' } });
  } catch (err) {
    refused = err;
  }
  t.match(refused, { code: 'connection_missing', message: /for host other\.tenant\.example \(its connection: for acme\.tenant\.example\)/ }, 'cached, and still refused for another tenant');
  await store.close();
});
