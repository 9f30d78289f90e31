import http from 'node:http';
import t from 'tap';
import { ADMIN, configDir, LOOPBACK_EGRESS, integrationYaml, startProxy, startUpstream, viaProxy, type TestProxy } from '../support/servers.js';

const ZENDESK = `hosts: ["{{subdomain}}.zendesk.example"]
description: Zendesk, per customer
params:
  - { name: subdomain, pattern: "^[a-z0-9-]{1,63}$", description: the account }
  - { name: region, default: eu }
auth:
  - type: basic
  - type: bearer
    fields: [{ name: token, pattern: "^zd_", description: an API token }]
`;

async function start(t: { teardown(fn: () => unknown): void }): Promise<TestProxy> {
  const up = await startUpstream();
  t.teardown(() => up.close());
  const proxy = await startProxy(
    configDir(`store: memory\nlimits: { admin_body_bytes: 2048 }\n${LOOPBACK_EGRESS}`, {
      svc: integrationYaml([`127.0.0.1:${up.port}`], '{ type: api_key, fields: [{ name: api_key, pattern: "^sk-" }, { name: org, secret: false, optional: true }] }'),
      zendesk: ZENDESK,
    }),
  );
  t.teardown(() => proxy.close());
  return proxy;
}

const json = async (r: Response) => JSON.parse(await r.text()) as Record<string, unknown>;

t.test('admin endpoints need the admin token; health endpoints do not', async (t) => {
  const proxy = await start(t);
  for (const authorization of [undefined, 'Bearer wrong-token', `Basic ${ADMIN}`, 'Bearer ', `Bearer ${ADMIN}x`]) {
    const r = await fetch(`${proxy.url}/api/integrations`, { headers: authorization === undefined ? {} : { authorization } });
    t.equal(r.status, 401, `${authorization ?? 'no header'}: 401`);
    t.equal(r.headers.get('x-credproxy-error'), 'unauthorized');
    t.match(r.headers.get('www-authenticate'), /^Bearer/);
    t.same((await json(r)).error, { code: 'unauthorized', message: 'this endpoint needs Authorization: Bearer <admin token>' });
  }
  const put = await fetch(`${proxy.url}/api/entities/alice/connections/svc`, { method: 'PUT', body: JSON.stringify({ credentials: { api_key: 'sk-x' } }) });
  t.equal(put.status, 401, 'writes too');
  t.equal((await proxy.admin('GET', '/api/entities/alice/connections/svc')).status, 404, 'and nothing was stored');

  const health = await fetch(`${proxy.url}/healthz`);
  t.equal(health.status, 200);
  t.same(await json(health), { status: 'ok' });
  const head = await fetch(`${proxy.url}/healthz`, { method: 'HEAD' });
  t.equal(head.status, 200);
  const ready = await fetch(`${proxy.url}/readyz`);
  t.same(await json(ready), { status: 'ready', integrations: 2 });
});

t.test('/metrics counts proxied requests in Prometheus text', async (t) => {
  const proxy = await start(t);
  const svc = (await json(await proxy.admin('GET', '/api/integrations/svc'))).hosts as string[];
  await viaProxy(proxy.port, `http://${svc[0]}/x`);
  await viaProxy(proxy.port, 'http://127.0.0.1:1/x');
  const r = await fetch(`${proxy.url}/metrics`);
  t.equal(r.status, 200);
  t.match(r.headers.get('content-type'), /text\/plain/);
  const text = await r.text();
  t.match(text, /credproxy_requests_total\{integration="svc",method="GET",status="4xx"\} 1/);
  t.match(text, /credproxy_requests_total\{integration="passthrough",method="GET",status="5xx"\} 1/);
  t.match(text, /credproxy_request_duration_seconds_count\{integration="svc"\} 1/);
});

t.test('connect_link says exactly which schemes a connect link can make, whatever connect says', async (t) => {
  const up = await startUpstream();
  t.teardown(() => up.close());
  const proxy = await startProxy(
    configDir('store: memory\n', {
      mixed: [
        'hosts: [mixed.example]',
        'auth:',
        '  - { type: oauth2, authorize_url: "https://p.example/a", token_url: "https://p.example/t", client_id: c, client_secret: s }',
        '  - { type: api_key }',
        '  - { type: basic }',
        '  - { type: jwt, algorithm: HS256, private_key: a-secret-of-32-characters-at-least }',
        '',
      ].join('\n'),
    }),
  );
  t.teardown(() => proxy.close());
  const schemes = (await json(await proxy.admin('GET', '/api/integrations/mixed'))).schemes as Array<{ type: string; connect: string; connect_link: boolean }>;
  t.same(
    schemes.map((s) => [s.type, s.connect, s.connect_link]),
    [['oauth2', 'connect_link', true], ['api_key', 'put', true], ['basic', 'put', true], ['jwt', 'none', false]],
    'field schemes keep connect: put (programs branch on it) and say connect_link: true',
  );
  for (const s of schemes) {
    const r = await proxy.admin('POST', `/api/entities/alice/connections/mixed/connect`, { scheme: s.type });
    t.equal(r.status, s.connect_link ? 200 : 400, `${s.type}: a link ${s.connect_link ? 'is made' : 'is refused'} as connect_link says`);
  }
});

t.test('integrations: list and one, with hosts, params and per scheme the fields', async (t) => {
  const proxy = await start(t);
  const list = await json(await proxy.admin('GET', '/api/integrations'));
  t.same((list.integrations as Array<{ name: string }>).map((i) => i.name), ['svc', 'zendesk']);
  const z = await json(await proxy.admin('GET', '/api/integrations/zendesk'));
  t.same(z, {
    name: 'zendesk',
    description: 'Zendesk, per customer',
    hosts: ['{{subdomain}}.zendesk.example'],
    paths: ['/'],
    upstream: 'https',
    params: [
      { name: 'subdomain', pattern: '^[a-z0-9-]{1,63}$', default: null, description: 'the account' },
      { name: 'region', pattern: null, default: 'eu', description: null },
    ],
    schemes: [
      {
        type: 'basic',
        default: true,
        needs_connection: true,
        connect: 'put',
        connect_link: true,
        fields: [
          { name: 'username', secret: false, optional: false, pattern: null, description: null },
          { name: 'password', secret: true, optional: false, pattern: null, description: null },
        ],
      },
      { type: 'bearer', default: false, needs_connection: true, connect: 'put', connect_link: true, fields: [{ name: 'token', secret: true, optional: false, pattern: '^zd_', description: 'an API token' }] },
    ],
  });
  const missing = await proxy.admin('GET', '/api/integrations/nope');
  t.equal(missing.status, 404);
  t.equal(missing.headers.get('x-credproxy-error'), 'not_found');
});

t.test('connections: PUT, GET, list, DELETE; secrets never returned', async (t) => {
  const proxy = await start(t);
  const secret = 'sk-never-shown-123';
  const put = await proxy.connect('alice', 'svc', { credentials: { api_key: secret, org: 'acme' } });
  t.equal(put.status, 200);
  t.equal(put.headers.get('cache-control'), 'no-store');
  const view = await json(put);
  t.match(view, { entity: 'alice', integration: 'svc', scheme: 'api_key', params: {}, status: 'active', reason: null, fields: ['api_key', 'org'], expires_at: null, scopes: null });
  const created = view.created_at as string;

  const zd = await proxy.connect('alice', 'zendesk', { scheme: 'bearer', params: { subdomain: 'acme' }, credentials: { token: 'zd_tok' } });
  t.equal(zd.status, 200);
  t.same((await json(zd)).params, { subdomain: 'acme', region: 'eu' }, 'defaults filled');

  const again = await json(await proxy.connect('alice', 'svc', { credentials: { api_key: 'sk-second' } }));
  t.equal(again.created_at, created, 'an update keeps created_at');
  t.same(again.fields, ['api_key']);

  const one = await proxy.admin('GET', '/api/entities/alice/connections/svc');
  t.equal(one.status, 200);
  const list = await proxy.admin('GET', '/api/entities/alice/connections');
  const listed = await json(list);
  t.same((listed.connections as Array<{ integration: string }>).map((c) => c.integration), ['svc', 'zendesk']);
  t.equal(listed.entity, 'alice');
  const texts = [JSON.stringify(view), JSON.stringify(again), await one.text(), JSON.stringify(listed)].join('\n');
  t.notMatch(texts, /sk-never-shown|sk-second|zd_tok/, 'no answer carries a secret');
  t.notMatch(proxy.logs.text, /sk-never-shown|sk-second|zd_tok/, 'nor does the log');

  t.equal((await proxy.admin('DELETE', '/api/entities/alice/connections/svc')).status, 204);
  const gone = await proxy.admin('GET', '/api/entities/alice/connections/svc');
  t.equal(gone.status, 404);
  t.match((await json(gone)).error, { code: 'not_found', message: /"alice" has no connection for "svc"/ });
  t.equal((await proxy.admin('DELETE', '/api/entities/alice/connections/svc')).status, 204, 'DELETE is idempotent');
  t.same(((await json(await proxy.admin('GET', '/api/entities/bob/connections'))).connections), []);
});

t.test('PUT validation: every bad input is a 400 (or 404/413) that says what is wrong', async (t) => {
  const proxy = await start(t);
  const cases: Array<[string, string, unknown, number, RegExp]> = [
    ['alice', 'svc', '{not json', 400, /not valid JSON/],
    ['alice', 'svc', '[1]', 400, /must be a JSON object/],
    ['alice', 'svc', '', 400, /credentials must be an object/],
    ['alice', 'svc', { credentials: [] }, 400, /credentials must be an object/],
    ['alice', 'svc', { credentials: { api_key: 'sk-x' }, extra: 1 }, 400, /unknown key extra/],
    ['alice', 'svc', { scheme: 1, credentials: {} }, 400, /scheme must be a string/],
    ['alice', 'svc', { scheme: 'bearer', credentials: {} }, 400, /has no scheme "bearer"; it offers api_key/],
    ['alice', 'svc', { credentials: { api_key: 'pk-x' } }, 400, /does not match the pattern \^sk-/],
    ['alice', 'svc', { credentials: { api_key: 'sk-x\r\nX-Evil: 1' } }, 400, /control characters/],
    ['alice', 'svc', { credentials: { api_key: 'sk-x', org: 5 } }, 400, /credentials\.org must be a string/],
    ['alice', 'svc', { credentials: { api_key: 'sk-t\u00f6k\u20acn' } }, 400, /the Authorization header built from them would hold characters an HTTP header cannot carry/],
    ['alice', 'svc', { credentials: { api_key: 'sk-x' }, params: { a: 'b' } }, 400, /params: unknown a; "svc" declares none/],
    ['alice', 'svc', { credentials: { api_key: 'sk-x' }, params: [] }, 400, /params must be an object/],
    ['alice', 'zendesk', { credentials: { username: 'u', password: 'p' } }, 400, /params\.subdomain is required/],
    ['alice', 'zendesk', { params: { subdomain: 'Acme.evil' }, credentials: { username: 'u', password: 'p' } }, 400, /params\.subdomain does not match/],
    ['alice', 'zendesk', { params: { subdomain: 'acme\n' }, credentials: { username: 'u', password: 'p' } }, 400, /without control characters/],
    ['alice', 'zendesk', { params: { subdomain: 7 }, credentials: { username: 'u', password: 'p' } }, 400, /must be a non-empty string/],
    ['-alice', 'svc', { credentials: { api_key: 'sk-x' } }, 400, /entity id/],
    ['alice', 'nope', { credentials: {} }, 404, /no integration named "nope"/],
    ['al%ZZice', 'svc', { credentials: {} }, 400, /malformed %-escape/],
    ['alice', 'svc', { credentials: { api_key: `sk-${'x'.repeat(3000)}` } }, 413, /over 2048 bytes/],
  ];
  for (const [entity, integration, body, status, message] of cases) {
    const r = await proxy.admin('PUT', `/api/entities/${entity}/connections/${integration}`, body);
    const text = await r.text();
    t.equal(r.status, status, `${JSON.stringify(body).slice(0, 80)} → ${status}`);
    t.match(JSON.parse(text).error.message, message);
    t.ok(r.headers.get('x-credproxy-error'));
  }
  t.equal((await proxy.admin('GET', '/api/entities/alice/connections/svc')).status, 404, 'nothing was stored by any of them');
  t.equal((await proxy.admin('GET', '/api/entities/a%20b/connections')).status, 400);
});

t.test('an oversized body without content-length is cut off at the limit', async (t) => {
  const proxy = await start(t);
  const status = await new Promise<number>((resolve, reject) => {
    const req = http.request(`${proxy.url}/api/entities/alice/connections/svc`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${ADMIN}`, 'transfer-encoding': 'chunked' },
    });
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    for (let i = 0; i < 4; i++) req.write('x'.repeat(1024));
    req.end();
  });
  t.equal(status, 413);
});

t.test('unknown paths are 404, wrong methods 405', async (t) => {
  const proxy = await start(t);
  const nf = await proxy.admin('GET', '/api/nothing');
  t.equal(nf.status, 404);
  t.equal(nf.headers.get('x-credproxy-error'), 'not_found');
  const root = await fetch(`${proxy.url}/`);
  t.equal(root.status, 404);
  const wrong = await proxy.admin('POST', '/api/integrations');
  t.equal(wrong.status, 405);
  t.equal(wrong.headers.get('x-credproxy-error'), 'method_not_allowed');
});
