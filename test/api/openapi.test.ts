import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import t from 'tap';
import { API_VERSION, openApiDocument, openApiText, shapeHash } from '../../src/api/openapi.js';
import { OPERATIONS, type Operation } from '../../src/api/operations.js';
import { routes } from '../../src/api/router.js';
import { ERRORS, type ErrorCode } from '../../src/errors.js';
import { ADMIN, configDir, integrationYaml, LOOPBACK_EGRESS, startProxy, startUpstream } from '../support/servers.js';

const root = process.cwd();
const doc = openApiDocument() as { info: { version: string }; paths: Record<string, Record<string, { operationId: string; responses: Record<string, { headers?: { 'X-Credproxy-Error': { schema: { enum: string[] } } } }> }>> };
const ops = Object.values(OPERATIONS) as Operation[];

t.test('the document is valid OpenAPI 3.1 (@seriousme/openapi-schema-validator)', async (t) => {
  const result = await new Validator().validate(openApiDocument());
  t.ok(result.valid, JSON.stringify(result.errors, null, 2));
  t.equal((openApiDocument() as { openapi: string }).openapi, '3.1.0');
});

t.test('the committed schema/openapi.json is what the build generates', async (t) => {
  t.equal(readFileSync(join(root, 'schema/openapi.json'), 'utf8'), openApiText(), 'run npm run build and commit schema/openapi.json');
});

t.test('a changed shape needs a new info.version (schema/openapi.versions.json)', async (t) => {
  const versions = JSON.parse(readFileSync(join(root, 'schema/openapi.versions.json'), 'utf8')) as Record<string, string>;
  const hash = shapeHash(openApiDocument());
  t.equal(doc.info.version, API_VERSION);
  t.ok(versions[API_VERSION], `schema/openapi.versions.json has no entry for ${API_VERSION}: add "${API_VERSION}": "${hash}"`);
  t.equal(
    versions[API_VERSION],
    hash,
    `the documented shapes changed but info.version is still ${API_VERSION}: raise API_VERSION in src/api/openapi.ts (major for a breaking change) and add its hash ${hash}`,
  );
  t.equal(Object.values(versions).filter((h) => h === hash).length, 1, 'each version has its own shape');
});

t.test('every registered route is one documented operation, and every operation a route', async (t) => {
  const seen = new Set<string>();
  for (const r of routes) {
    const o = r.op;
    if (!o) {
      // The dashboard's HTML pages (a session cookie, not the admin API): only they may be left out.
      t.ok(r.pattern.source.startsWith('^\\/ui\\/') || r.pattern.source.startsWith('^/ui/'), `${r.method} ${r.pattern} has no operation: only /ui/ pages may`);
      t.notOk(r.admin, `${r.method} ${r.pattern}: checks its own session`);
      continue;
    }
    t.equal(r.method, o.method, `${o.operationId}: method`);
    t.equal(r.admin, o.admin, `${o.operationId}: admin`);
    // The path template, its parameters filled, is what the route's pattern takes, with as many captures.
    const params = [...o.path.matchAll(/\{(\w+)\}/g)];
    const m = r.pattern.exec(o.path.replace(/\{\w+\}/g, 'x-1'));
    t.ok(m, `${o.operationId}: ${o.path} matches ${r.pattern}`);
    t.equal((m?.length ?? 0) - 1, params.length, `${o.operationId}: path parameters`);
    t.notOk(seen.has(o.operationId), `${o.operationId} is used by one route`);
    seen.add(o.operationId);
    t.equal(doc.paths[o.path]?.[o.method.toLowerCase()]?.operationId, o.operationId, `${o.method} ${o.path} is in the document`);
  }
  t.same([...seen].sort(), ops.map((o) => o.operationId).sort(), 'no operation without a route');
  const documented = Object.values(doc.paths).flatMap((p) => Object.values(p).map((o) => o.operationId));
  t.same(documented.sort(), [...seen].sort(), 'the document names no operation the server does not have');
});

t.test('every status and error code of an operation is in the document, and nothing else', async (t) => {
  for (const o of ops) {
    const responses = doc.paths[o.path]![o.method.toLowerCase()]!.responses;
    const want = new Set([...o.ok.map((r) => String(r.status)), ...o.errors.map((c) => String(ERRORS[c].status))]);
    t.same(Object.keys(responses).sort(), [...want].sort(), `${o.operationId}: statuses`);
    for (const code of o.errors) {
      t.ok(code in ERRORS, `${o.operationId}: ${code} is in the error registry`);
      t.ok(responses[String(ERRORS[code].status)]?.headers?.['X-Credproxy-Error'].schema.enum.includes(code), `${o.operationId}: ${code} under ${ERRORS[code].status}`);
    }
    for (const [status, r] of Object.entries(responses)) {
      for (const code of r.headers?.['X-Credproxy-Error'].schema.enum ?? []) {
        t.equal(ERRORS[code as ErrorCode]?.status, Number(status), `${o.operationId}: ${code} is a ${status} in errors.ts`);
      }
    }
  }
});

/**
 * Real requests to every operation: what the server answers must be documented (status, error
 * code) and, for a JSON answer, match the documented shape exactly (an undocumented field fails).
 */
t.test('what a real server answers is documented', async (t) => {
  const up = await startUpstream();
  t.teardown(() => up.close());
  const proxy = await startProxy(
    configDir(`store: memory\nlimits: { admin_body_bytes: 2048 }\n${LOOPBACK_EGRESS}`, {
      svc: integrationYaml([`127.0.0.1:${up.port}`], '{ type: api_key, fields: [api_key] }'),
      gh: `hosts: [gh.example]\nauth:\n  type: oauth2\n  authorize_url: https://gh.example/authorize\n  token_url: https://gh.example/token\n  client_id: id\n  client_secret: s\n  scopes: [repo]\n`,
    }),
  );
  t.teardown(() => proxy.close());
  const issued = (await (await proxy.admin('POST', '/api/entities/alice/tokens', {})).json()) as { id: string };
  type Probe = [method: string, path: string, body?: unknown, admin?: boolean];
  const probes: Record<string, Probe[]> = {
    health: [['GET', '/healthz']],
    ready: [['GET', '/readyz']],
    metrics: [['GET', '/metrics']],
    getOpenApi: [['GET', '/api/openapi.json'], ['GET', '/api/openapi.json', undefined, false]],
    listIntegrations: [['GET', '/api/integrations'], ['GET', '/api/integrations', undefined, false]],
    getIntegration: [['GET', '/api/integrations/svc'], ['GET', '/api/integrations/gh'], ['GET', '/api/integrations/nope']],
    putConnection: [
      ['PUT', '/api/entities/alice/connections/svc', { credentials: { api_key: 'k' } }],
      ['PUT', '/api/entities/alice/connections/svc?label=work', { credentials: { api_key: 'k' } }],
      ['PUT', '/api/entities/alice/connections/svc', { credentials: 'k' }],
      ['PUT', '/api/entities/alice/connections/svc', { credentials: {}, x: 1 }],
      ['PUT', '/api/entities/alice/connections/nope', { credentials: {} }],
      ['PUT', '/api/entities/alice/connections/svc', { credentials: { api_key: 'k'.repeat(3000) } }],
    ],
    listConnections: [['GET', '/api/entities/alice/connections'], ['GET', '/api/entities/-bad/connections']],
    getConnection: [['GET', '/api/entities/alice/connections/svc'], ['GET', '/api/entities/bob/connections/svc'], ['GET', '/api/entities/alice/connections/svc?label=!']],
    deleteConnection: [['DELETE', '/api/entities/alice/connections/svc?label=work'], ['DELETE', '/api/entities/-bad/connections/svc']],
    createConnectLink: [
      ['POST', '/api/entities/alice/connections/gh/connect', {}],
      ['POST', '/api/entities/alice/connections/gh/connect', { scopes: [] }],
      ['POST', '/api/entities/alice/connections/nope/connect', {}],
    ],
    createEntityToken: [['POST', '/api/entities/alice/tokens', { ttl: 60, label: 'work' }], ['POST', '/api/entities/alice/tokens', { ttl: 0 }]],
    revokeEntityToken: [['DELETE', `/api/tokens/${issued.id}`], ['DELETE', '/api/tokens/nope']],
    queryAudit: [['GET', '/api/audit?limit=5'], ['GET', '/api/audit?limit=0']],
    connectCallback: [['GET', '/connect/callback?state=nope&code=x']],
    connectPage: [['GET', '/connect/gh?token=nope'], ['GET', '/connect/gh']],
    connectContinue: [['POST', '/connect/gh', 'token=nope']],
    connectLogo: [['GET', '/connect/gh/logo/0123456789abcdef']],
  };
  for (const o of ops) {
    const list = probes[o.operationId];
    t.ok(list && list.length > 0, `${o.operationId} has probes (add some for a new route)`);
    for (const [method, path, body, admin] of list ?? []) {
      const form = typeof body === 'string';
      const r = await fetch(`${proxy.url}${path}`, {
        method,
        headers: {
          ...(admin === false ? {} : { authorization: `Bearer ${ADMIN}` }),
          ...(body === undefined ? {} : { 'content-type': form ? 'application/x-www-form-urlencoded' : 'application/json' }),
          accept: 'application/json',
        },
        body: body === undefined ? undefined : form ? body : JSON.stringify(body),
        redirect: 'manual',
      });
      const what = `${o.operationId}: ${method} ${path} → ${r.status}`;
      const text = await r.text();
      const code = r.headers.get('x-credproxy-error');
      if (code !== null) {
        t.ok(o.errors.includes(code as ErrorCode), `${what} ${code} is documented`);
        t.equal(ERRORS[code as ErrorCode]?.status, r.status, `${what}: ${code}'s status`);
        continue;
      }
      const ok = o.ok.find((x) => x.status === r.status);
      t.ok(ok, `${what} is documented`);
      if (ok?.type) t.doesNotThrow(() => ok.type!.check(JSON.parse(text), ''), `${what}: the answer has the documented shape`);
    }
  }
});

t.test('the shape hash ignores prose but not a field named "description"', async (t) => {
  const base = { openapi: '3.1.0', info: { version: '1' }, paths: { '/x': { get: { summary: 'a', responses: { 200: { description: 'ok', content: { 'application/json': { schema: { type: 'object', properties: { description: { type: 'string' } } } } } } } } } } };
  const reworded = structuredClone(base);
  reworded.paths['/x'].get.summary = 'b';
  reworded.paths['/x'].get.responses[200].description = 'fine';
  t.equal(shapeHash(reworded), shapeHash(base), 'summary and description text');
  const renamed = structuredClone(base) as unknown as { paths: { '/x': { get: { responses: Record<number, { content: Record<string, { schema: { properties: Record<string, unknown> } }> }> } } } };
  const props = renamed.paths['/x'].get.responses[200]!.content['application/json']!.schema.properties;
  delete props.description;
  props.title = { type: 'string' };
  t.not(shapeHash(renamed), shapeHash(base), 'a renamed field');
});
