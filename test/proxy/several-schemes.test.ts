import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import t from 'tap';
import { decrypt, parseKey } from '../../src/store/crypto.js';
import { testKey } from '../support/keys.js';
import { OAuthServer } from '../support/oauth-server.js';
import { configDir, SECRET_KEY, startProxy, startUpstream, viaProxy, type TestProxy } from '../support/servers.js';
import { connectInBrowser } from '../support/browser.js';

/**
 * One integration, two schemes: a token the user pastes (first, so the default) and OAuth
 * 2.0. Each connection picks one; each scheme injects its own way; connect links start the
 * OAuth flow even though it is not the first scheme; switching a connection's scheme leaves
 * nothing of the old one in the store (checked in the SQLite file itself).
 */

interface Row {
  key: string;
  value: string;
}

t.test('oauth2 + bearer: two entities by different schemes, both injected; switching replaces the old secrets', async (t) => {
  const as = await new OAuthServer().start();
  const up = await startUpstream();
  const db = join(mkdtempSync(join(tmpdir(), 'credproxy-schemes-')), 'credproxy.db');
  const dir = configDir(`store: sqlite:${db}\n`, {
    svc: [
      `hosts: ["127.0.0.1:${up.port}"]`,
      'upstream: http',
      'auth:',
      '  - type: bearer',
      '    inject: { headers: { X-Api-Token: "{{token}}" } }',
      '  - type: oauth2',
      `    authorize_url: ${as.origin}/authorize`,
      `    token_url: ${as.origin}/token`,
      `    client_id: ${as.clientId}`,
      `    client_secret: ${as.clientSecret}`,
      '    scopes: [read]',
      '',
    ].join('\n'),
  });
  const proxy = await startProxy(dir);
  t.teardown(async () => {
    await proxy.close();
    await Promise.all([as.close(), up.close()]);
  });

  const send = async (entity: string) => {
    const r = await viaProxy(proxy.port, `${up.origin}/x`, { headers: { 'X-Entity-Id': entity } });
    t.equal(r.status, 200, `${entity}: 200`);
    return up.seen.at(-1)!.headers;
  };
  const shown = async (entity: string) => (await (await proxy.admin('GET', `/api/entities/${entity}/connections/svc`)).json()) as { scheme: string; fields: string[]; status: string };
  /** The connection as the SQLite file holds it: exactly one row, its clear metadata and its decrypted secrets. */
  const raw = (entity: string) => {
    const conn = new Database(db, { readonly: true });
    try {
      const rows = conn.prepare<[string], Row>('SELECT key, value FROM keyv WHERE key LIKE ?').all(`%conn:${entity}:%`);
      t.equal(rows.length, 1, `one stored record for ${entity}`);
      const stored = JSON.parse((JSON.parse(rows[0]!.value) as { value: string }).value) as { scheme: string; sealed: string };
      const secrets = JSON.parse(decrypt(parseKey(SECRET_KEY)!, stored.sealed, `credproxy:connection:${entity}\nsvc`)) as Record<string, string>;
      return { scheme: stored.scheme, secrets, text: rows[0]!.value };
    } finally {
      conn.close();
    }
  };

  // alice connects through OAuth: the link starts the oauth2 scheme, though bearer comes first.
  const link = await proxy.admin('POST', '/api/entities/alice/connections/svc/connect', {});
  t.equal(link.status, 200);
  t.equal((await connectInBrowser(((await link.json()) as { connect_url: string }).connect_url)).status, 200);
  t.equal(as.authorizeRequests.length, 1, 'the provider saw the authorize request');
  t.match(await shown('alice'), { scheme: 'oauth2', status: 'active', fields: ['access_token', 'refresh_token'] });

  // bob pastes a token: the default (first) scheme.
  t.equal((await proxy.connect('bob', 'svc', { credentials: { token: 'tok-bob' } })).status, 200);
  t.match(await shown('bob'), { scheme: 'bearer', fields: ['token'] });

  const a = await send('alice');
  t.match(a.authorization, /^Bearer at-/, 'alice: the oauth2 default inject');
  t.notOk(a['x-api-token'], 'alice: nothing of the bearer scheme');
  const b = await send('bob');
  t.equal(b['x-api-token'], 'tok-bob', "bob: the bearer scheme's own inject");
  t.notOk(b.authorization, 'bob: nothing of the oauth2 scheme');

  // bob switches to OAuth tokens (migrated through PUT): the pasted token is gone.
  const tokens = as.issue();
  t.equal((await proxy.connect('bob', 'svc', { scheme: 'oauth2', credentials: tokens })).status, 200);
  const bobRaw = raw('bob');
  t.equal(bobRaw.scheme, 'oauth2');
  t.same(Object.keys(bobRaw.secrets).sort(), ['access_token', 'refresh_token'], 'only the new scheme’s secrets are stored');
  t.notMatch(bobRaw.text, /tok-bob/);
  const b2 = await send('bob');
  t.equal(b2.authorization, `Bearer ${tokens.access_token}`);
  t.notOk(b2['x-api-token']);

  // alice switches to a pasted token: her refresh token is gone.
  t.equal((await proxy.connect('alice', 'svc', { scheme: 'bearer', credentials: { token: 'tok-alice' } })).status, 200);
  const aliceRaw = raw('alice');
  t.equal(aliceRaw.scheme, 'bearer');
  t.same(aliceRaw.secrets, { token: 'tok-alice' });
  const a2 = await send('alice');
  t.equal(a2['x-api-token'], 'tok-alice');
  t.notOk(a2.authorization);

  // A connect link for an active bearer connection keeps it working until the OAuth flow completes.
  const relink = await proxy.admin('POST', '/api/entities/alice/connections/svc/connect', {});
  const url = ((await relink.json()) as { connect_url: string }).connect_url;
  t.match(await shown('alice'), { scheme: 'bearer', status: 'active' }, 'still the pasted token while the flow runs');
  t.equal((await send('alice'))['x-api-token'], 'tok-alice');
  t.equal((await connectInBrowser(url)).status, 200);
  const after = raw('alice');
  t.equal(after.scheme, 'oauth2');
  t.same(Object.keys(after.secrets).sort(), ['access_token', 'refresh_token'], 'the pasted token is replaced by the token set');
  t.match((await send('alice')).authorization, /^Bearer at-/);

  const wrong = await proxy.connect('carol', 'svc', { scheme: 'basic', credentials: { username: 'u', password: 'p' } });
  t.equal(wrong.status, 400);
  t.match(((await wrong.json()) as { error: { message: string } }).error.message, /offers bearer, oauth2/);
  t.notMatch(proxy.logs.text, /tok-bob|tok-alice|at-\d|rt-\d/, 'no secret in the logs');
});

t.test('the integrations endpoint describes params and, per scheme, the fields', async (t) => {
  const dir = configDir('store: memory\n', {
    zendesk: [
      'description: Zendesk, per customer',
      'hosts: ["{{subdomain}}.zendesk.test"]',
      'params:',
      '  - { name: subdomain, pattern: "^[a-z0-9-]{1,63}$", description: "your Zendesk subdomain" }',
      'auth:',
      '  - type: oauth2',
      '    authorize_url: "https://{{subdomain}}.zendesk.test/oauth/authorizations/new"',
      '    token_url: "https://{{subdomain}}.zendesk.test/oauth/tokens"',
      '    client_id: c',
      '    scopes: [read]',
      '  - type: basic',
      '    fields: [{ name: username, secret: false, description: "agent e-mail" }, { name: password, description: "API token" }]',
      '',
    ].join('\n'),
    signed: `hosts: [signed.test]\nauth: { type: jwt, algorithm: HS256, private_key: "${testKey('HS256').privateText}" }\n`,
  });
  const proxy: TestProxy = await startProxy(dir);
  t.teardown(() => proxy.close());
  const list = (await (await proxy.admin('GET', '/api/integrations')).json()) as { integrations: unknown[] };
  const one = await (await proxy.admin('GET', '/api/integrations/zendesk')).json();
  t.same(list.integrations[1], one, 'the list holds the same description');
  t.match(list.integrations[0], { name: 'signed', schemes: [{ type: 'jwt', needs_connection: false, connect: 'none', connect_link: false, fields: [] }] }, 'a key in the YAML: no connection to make');
  t.same(one, {
    name: 'zendesk',
    description: 'Zendesk, per customer',
    hosts: ['{{subdomain}}.zendesk.test'],
    paths: ['/'],
    upstream: 'https',
    params: [{ name: 'subdomain', pattern: '^[a-z0-9-]{1,63}$', default: null, description: 'your Zendesk subdomain' }],
    schemes: [
      {
        type: 'oauth2',
        default: true,
        needs_connection: true,
        connect: 'connect_link',
        connect_link: true,
        scopes: ['read'],
        fields: [
          { name: 'access_token', secret: true, optional: false, pattern: null, description: null },
          { name: 'refresh_token', secret: true, optional: true, pattern: null, description: null },
        ],
      },
      {
        type: 'basic',
        default: false,
        needs_connection: true,
        connect: 'put',
        connect_link: true,
        fields: [
          { name: 'username', secret: false, optional: false, pattern: null, description: 'agent e-mail' },
          { name: 'password', secret: true, optional: false, pattern: null, description: 'API token' },
        ],
      },
    ],
  });
});

t.test('switching schemes while a refresh is under way: the refresh does not bring the old tokens back', async (t) => {
  const as = await new OAuthServer().start();
  const up = await startUpstream();
  const dir = configDir('store: memory\n', {
    svc: [
      `hosts: ["127.0.0.1:${up.port}"]`,
      'upstream: http',
      'auth:',
      '  - type: oauth2',
      `    authorize_url: ${as.origin}/authorize`,
      `    token_url: ${as.origin}/token`,
      `    client_id: ${as.clientId}`,
      `    client_secret: ${as.clientSecret}`,
      '  - type: bearer',
      '',
    ].join('\n'),
  });
  const proxy = await startProxy(dir);
  t.teardown(async () => {
    await proxy.close();
    await Promise.all([as.close(), up.close()]);
  });
  // An access token that expired: the next request refreshes first.
  t.equal((await proxy.connect('alice', 'svc', { credentials: { ...as.issue(), expires_at: new Date(Date.now() - 1000).toISOString() } })).status, 200);
  let arrived!: () => void;
  const refreshArrived = new Promise<void>((r) => (arrived = r));
  let release!: () => void;
  as.beforeToken = () => {
    arrived();
    return new Promise<void>((r) => (release = r));
  };
  const pending = viaProxy(proxy.port, `${up.origin}/x`, { headers: { 'X-Entity-Id': 'alice' } });
  await refreshArrived;
  t.equal((await proxy.connect('alice', 'svc', { scheme: 'bearer', credentials: { token: 'tok-alice' } })).status, 200, 'switched while the token endpoint is answering');
  release();
  const r = await pending;
  t.not(r.status, 200, 'the request that started as oauth2 is not sent with a token of the old scheme');
  t.equal(as.count('refresh_token'), 1);
  const stored = await proxy.runtime.store.get('alice', 'svc', { fresh: true });
  t.equal(stored?.scheme, 'bearer', 'the switch stands');
  t.same(stored?.credentials, { token: 'tok-alice' }, 'no refreshed oauth2 token was written over it');
  t.equal((await viaProxy(proxy.port, `${up.origin}/y`, { headers: { 'X-Entity-Id': 'alice' } })).status, 200);
  t.equal(up.seen.at(-1)!.headers.authorization, 'Bearer tok-alice');
});
