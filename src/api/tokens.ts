import type { IncomingMessage, ServerResponse } from 'node:http';
import { CredproxyError } from '../errors.js';
import { checkEntityId } from '../proxy/identify.js';
import { checkLabel } from '../store/label.js';
import type { Runtime } from '../runtime.js';
import { issueToken, revokeToken } from '../tokens/entity-tokens.js';
import { readJson, sendJson } from './http.js';
import { EntityTokenBody } from './shapes.js';

/** POST /api/entities/{entity}/tokens: body `{"integrations"?: [names], "ttl"?: seconds, "label"?: label}`. */
export async function createEntityToken(rt: Runtime, req: IncomingMessage, res: ServerResponse, entity: string): Promise<void> {
  checkEntityId(entity, 'the entity in the path');
  const body = await readJson(req, rt.current.config.settings.limits.admin_body_bytes);
  const { integrations, ttl, label } = EntityTokenBody.check(body, '');
  // A client that cannot set headers cannot send X-Connection-Label either: the token carries the label.
  if (label !== undefined) checkLabel(label, 'label');
  let names: string[] | undefined;
  if (integrations !== undefined) {
    const unknown = integrations.filter((n) => !rt.current.config.integrations.has(n));
    if (unknown.length > 0) throw new CredproxyError('bad_request', `no integration named ${unknown.map((n) => `"${n}"`).join(', ')}`);
    names = [...new Set(integrations)];
  }
  const issued = await issueToken(rt.store.kv, entity, { integrations: names, ttlSeconds: ttl, label });
  rt.log.info({ entity, token_id: issued.id, integrations: names, label }, 'entity token issued');
  sendJson(res, 200, { id: issued.id, token: issued.token, entity, integrations: names ?? null, label: label ?? null, expires_at: new Date(issued.expires_at).toISOString() });
}

/** DELETE /api/tokens/{id}: 204, or 404 when no live token has that id. */
export async function deleteEntityToken(rt: Runtime, res: ServerResponse, id: string): Promise<void> {
  if (!(await revokeToken(rt.store.kv, id))) throw new CredproxyError('not_found', `no live entity token with id "${id}"`);
  rt.log.info({ token_id: id }, 'entity token revoked');
  res.writeHead(204).end();
}
