import type { IncomingMessage, ServerResponse } from 'node:http';
import { AUDIT_OFF } from '../audit/audit-log.js';
import { CredproxyError } from '../errors.js';
import type { Runtime } from '../runtime.js';
import { sendJson } from './http.js';

const MAX_LIMIT = 1000;

/**
 * GET /api/audit?entity=&integration=&since=&limit=: the latest matching entries, oldest
 * first; 404 not_found saying so when the audit log is turned off (audit.enabled: false).
 */
export async function getAudit(rt: Runtime, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (!rt.audit.enabled) throw new CredproxyError('not_found', AUDIT_OFF);
  const q = new URL(req.url ?? '/', 'http://credproxy.invalid').searchParams;
  const limitText = q.get('limit');
  const limit = limitText === null ? 100 : Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) throw new CredproxyError('bad_request', `limit must be a whole number from 1 to ${MAX_LIMIT}`);
  const sinceText = q.get('since');
  let since: number | undefined;
  if (sinceText !== null) {
    since = /^\d+$/.test(sinceText) ? Number(sinceText) : Date.parse(sinceText);
    if (Number.isNaN(since)) throw new CredproxyError('bad_request', 'since must be an ISO 8601 time or milliseconds since the epoch');
  }
  const entries = await rt.audit.query({ entity: q.get('entity') ?? undefined, integration: q.get('integration') ?? undefined, since, limit });
  sendJson(res, 200, { entries });
}
