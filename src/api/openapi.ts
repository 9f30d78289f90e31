import { createHash } from 'node:crypto';
import { ERRORS, type ErrorCode } from '../errors.js';
import { OPERATIONS, PATH_PARAMS, type Operation } from './operations.js';
import { ErrorBody } from './shapes.js';

/**
 * The version of the documented API shapes. Raise it with any change to the document's shape
 * (minor: something added; major: something removed or changed); schema/openapi.versions.json
 * holds the shape hash of each version, and test/api/openapi.test.ts fails when the shape
 * changed under the same version.
 */
export const API_VERSION = '1.3.0';

const jsonOf = (schema: Record<string, unknown>) => ({ 'application/json': { schema } });

function errorResponses(codes: readonly ErrorCode[]) {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of codes) byStatus.set(ERRORS[code].status, [...(byStatus.get(ERRORS[code].status) ?? []), code]);
  return Object.fromEntries(
    [...byStatus].sort(([a], [b]) => a - b).map(([status, list]) => [
      String(status),
      {
        description: `credproxy's own error: ${list.join(', ')}`,
        headers: { 'X-Credproxy-Error': { description: 'the error code', schema: { type: 'string', enum: list } } },
        content: jsonOf({ allOf: [{ $ref: '#/components/schemas/Error' }, { properties: { error: { properties: { code: { enum: list } } } } }] }),
      },
    ]),
  );
}

function operationObject(o: Operation) {
  const pathParams = [...o.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!);
  const parameters = [
    ...pathParams.map((name) => ({ name, in: 'path', required: true, description: PATH_PARAMS[name] ?? name, schema: { type: 'string' } })),
    ...(o.query ?? []).map((q) => ({ name: q.name, in: 'query', required: false, description: q.description, schema: q.schema })),
  ];
  const ok = Object.fromEntries(
    o.ok.map((r) => [
      String(r.status),
      {
        description: r.description,
        ...(r.type ? { content: jsonOf(r.type.schema) } : r.contentType ? { content: { [r.contentType]: { schema: r.contentType === 'application/json' ? { type: 'object' } : { type: 'string' } } } } : {}),
      },
    ]),
  );
  return {
    operationId: o.operationId,
    summary: o.summary,
    tags: [o.tag],
    ...(o.admin ? {} : { security: [] }),
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(o.body ? { requestBody: { required: true, content: { [o.body.contentType ?? 'application/json']: { schema: o.body.type.schema } } } } : {}),
    responses: { ...ok, ...errorResponses(o.errors) },
  };
}

/** The OpenAPI 3.1 document of the admin API and the connect endpoints, built from the route descriptions. */
export function openApiDocument(): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const o of Object.values(OPERATIONS) as Operation[]) (paths[o.path] ??= {})[o.method.toLowerCase()] = operationObject(o);
  return {
    openapi: '3.1.0',
    info: {
      title: 'credproxy admin API',
      version: API_VERSION,
      description: "credproxy's own API: integrations, connections, connect links, entity tokens, audit. Every error credproxy answers itself has the body below and the header X-Credproxy-Error.",
      license: { name: 'MIT', identifier: 'MIT' },
    },
    servers: [{ url: 'http://127.0.0.1:8080', description: 'the default listen address' }],
    security: [{ adminToken: [] }],
    tags: ['health', 'meta', 'integrations', 'connections', 'tokens', 'audit', 'connect'].map((name) => ({ name })),
    paths,
    components: {
      securitySchemes: { adminToken: { type: 'http', scheme: 'bearer', description: 'the admin token (admin_token, CREDPROXY_ADMIN_TOKEN, or data/admin.token)' } },
      schemas: { Error: ErrorBody.schema },
    },
  };
}

/**
 * The hash of the document's shape: everything but `info` and the prose (`summary`,
 * `description`), so rewording a sentence needs no new version but any change a program
 * could notice does.
 */
export function shapeHash(doc: Record<string, unknown>): string {
  const { info: _info, ...shape } = doc;
  return createHash('sha256').update(JSON.stringify(withoutProse(shape, false))).digest('hex');
}

function withoutProse(v: unknown, isPropertyMap: boolean): unknown {
  if (Array.isArray(v)) return v.map((x) => withoutProse(x, false));
  if (v === null || typeof v !== 'object') return v;
  return Object.fromEntries(
    Object.entries(v)
      // A schema's `properties` may name a field "description" (integrations have one): that is shape, not prose.
      .filter(([k, x]) => isPropertyMap || !((k === 'description' || k === 'summary') && typeof x === 'string'))
      .map(([k, x]) => [k, withoutProse(x, !isPropertyMap && k === 'properties')]),
  );
}

export const openApiText = () => `${JSON.stringify(openApiDocument(), null, 2)}\n`;
