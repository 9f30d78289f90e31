import { connectionView } from '../../api/views.js';
import { CredproxyError } from '../../errors.js';
import { checkEntityId } from '../../proxy/identify.js';
import { storeCall } from '../../store/failure.js';
import { ScanCursorError } from '../../store/scan.js';
import type { Connection, ConnectionSummary, ScanOptions, ScanPage } from '../../store/types.js';
import type { Runtime } from '../../runtime.js';
import { csrfField, h, sendPage, signedIn, when } from './layout.js';

/**
 * GET /ui/entities?entity=&status=&integration=&label=: one entity's connections, filtered;
 * without an entity, every entity's connections a page at a time (`cursor`), through the
 * store's bounded scan (src/store/scan.ts), which the same filters narrow.
 */

/** Connections per page of the list of all entities. */
export const PAGE_SIZE = 50;

/** A page of the store's scan; a cursor that is not one of ours is a 400, not a 503. */
export async function scanConnections(rt: Runtime, opts: ScanOptions): Promise<ScanPage> {
  try {
    return await storeCall('connection.scan', () => rt.store.scan(opts));
  } catch (err) {
    if ((err as { cause?: unknown }).cause instanceof ScanCursorError) throw new CredproxyError('bad_request', 'that page link is not valid here (a cursor from another store?); start from the first page');
    throw err;
  }
}

export const STATUSES: Connection['status'][] = ['initiated', 'active', 'expired', 'failed'];

export const connectionPath = (entity: string, integration: string, label: string | null | undefined, suffix = '') =>
  `/ui/entities/${encodeURIComponent(entity)}/connections/${encodeURIComponent(integration)}${suffix}${label ? `?label=${encodeURIComponent(label)}` : ''}`;

const option = (value: string, text: string, chosen: string) => `<option value="${h(value)}"${value === chosen ? ' selected' : ''}>${h(text)}</option>`;

export const entitiesPage = signedIn(async (rt, req, res, s) => {
  const q = new URL(req.url ?? '/', 'http://credproxy.invalid').searchParams;
  const entity = (q.get('entity') ?? '').trim();
  const status = q.get('status') ?? '';
  const integration = q.get('integration') ?? '';
  const label = (q.get('label') ?? '').trim();
  const names = [...rt.current.config.integrations.keys()];
  const search =
    '<form method="get" action="/ui/entities" class="inline" role="search">' +
    `<div class="field"><label for="entity">Entity id</label><input id="entity" name="entity" type="text" value="${h(entity)}" maxlength="256" placeholder="all entities"></div>` +
    `<div><label for="status">Status</label><select id="status" name="status">${option('', 'any', status)}${STATUSES.map((x) => option(x, x, status)).join('')}</select></div>` +
    `<div><label for="integration">Integration</label><select id="integration" name="integration">${option('', 'any', integration)}${names.map((n) => option(n, n, integration)).join('')}</select></div>` +
    `<div class="field"><label for="label">Label</label><input id="label" name="label" type="text" value="${h(label)}" maxlength="64" placeholder="any"></div>` +
    '<div><button type="submit">Show</button></div></form>';
  if (!entity) {
    if (status && !STATUSES.includes(status as Connection['status'])) throw new CredproxyError('bad_request', `status must be one of ${STATUSES.join(', ')}`);
    const cursor = q.get('cursor') ?? undefined;
    const page = await scanConnections(rt, {
      limit: PAGE_SIZE,
      ...(cursor ? { cursor } : {}),
      ...(integration ? { integration } : {}),
      ...(status ? { status: status as Connection['status'] } : {}),
      ...(label ? { label } : {}),
    });
    return sendPage(res, s, { title: 'Entities', bodyHtml: `${search}${allEntities(page, { status, integration, label, cursor })}` });
  }
  checkEntityId(entity, 'the entity id');
  const all = await storeCall('connection.list', () => rt.store.list(entity, names));
  const shown = all
    .map(connectionView)
    .filter((c) => (!status || c.status === status) && (!integration || c.integration === integration) && (!label || (c.label ?? '') === label));
  const rows = shown
    .map(
      (c) =>
        `<tr><td><a href="${h(connectionPath(c.entity, c.integration, c.label))}">${h(c.integration)}</a></td><td>${c.label === null ? 'default' : h(c.label)}</td>` +
        `<td class="status s-${h(c.status)}">${h(c.status)}</td><td>${h(c.scheme)}</td><td>${c.expires_at ? h(when(c.expires_at)) : '—'}</td><td>${c.reason ? h(c.reason) : ''}</td></tr>`,
    )
    .join('');
  const table = shown.length
    ? `<div class="scroll"><table><caption class="sr">Connections</caption><thead><tr><th>Integration</th><th>Label</th><th>Status</th><th>Scheme</th><th>Expires</th><th>Reason</th></tr></thead><tbody>${rows}</tbody></table></div>`
    : `<p>${all.length ? `None of ${h(entity)}'s ${all.length} connection${all.length === 1 ? '' : 's'} match these filters.` : `${h(entity)} has no connection.`}</p>`;
  const link =
    `<h2>New connect link</h2><form method="post" action="/ui/entities/${h(encodeURIComponent(entity))}/connect" class="inline">${csrfField(s)}` +
    `<div><label for="link-integration">Integration</label><select id="link-integration" name="integration">${names.map((n) => option(n, n, integration)).join('')}</select></div>` +
    '<div class="field"><label for="link-label">Label (optional)</label><input id="link-label" name="label" type="text" maxlength="64"></div>' +
    '<div><button type="submit">Make link</button></div></form>';
  sendPage(res, s, {
    title: 'Entities',
    bodyHtml: `${search}<h2>Connections of <code>${h(entity)}</code></h2><p>${shown.length} shown of ${all.length}.</p>${table}${link}`,
  });
});

/** The list of all entities: one page of connections, each row linked to its entity and its detail. */
function allEntities(page: ScanPage, f: { status: string; integration: string; label: string; cursor: string | undefined }): string {
  const filtered = f.status || f.integration || f.label;
  const rows = page.items.map(summaryRow).join('');
  const keep = new URLSearchParams({ ...(f.status ? { status: f.status } : {}), ...(f.integration ? { integration: f.integration } : {}), ...(f.label ? { label: f.label } : {}) });
  const pageLink = (cursor: string | undefined, text: string, rel: string) => {
    const q = new URLSearchParams(keep);
    if (cursor) q.set('cursor', cursor);
    return `<a href="/ui/entities${q.size ? `?${h(q.toString())}` : ''}" rel="${rel}">${text}</a>`;
  };
  const nav = [f.cursor ? pageLink(undefined, 'First page', 'first') : '', page.next ? pageLink(page.next, 'Next page →', 'next') : ''].filter(Boolean).join(' · ');
  const table = rows
    ? `<div class="scroll"><table><caption class="sr">Connections of all entities</caption><thead><tr><th>Entity</th><th>Integration</th><th>Label</th><th>Status</th><th>Scheme</th><th>Expires</th><th>Reason</th></tr></thead><tbody>${rows}</tbody></table></div>`
    : `<p>${page.next ? 'None on this page match these filters; there are more further on.' : filtered ? 'No connection matches these filters.' : 'No connection is stored yet.'}</p>`;
  return (
    `<h2>All entities</h2><p>${page.items.length} connection${page.items.length === 1 ? '' : 's'}${filtered ? ' matching the filters' : ''} on this page` +
    `${page.next ? ` (up to ${PAGE_SIZE} a page)` : ''}. Pick an entity to see and act on its connections.</p>${table}${nav ? `<p>${nav}</p>` : ''}`
  );
}

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

export function summaryRow(c: ConnectionSummary): string {
  const expires = iso(c.expires_at);
  return (
    `<tr><td><a href="/ui/entities?entity=${h(encodeURIComponent(c.entity))}"><code>${h(c.entity)}</code></a></td>` +
    `<td><a href="${h(connectionPath(c.entity, c.integration, c.label))}">${h(c.integration)}</a></td><td>${c.label === undefined ? 'default' : h(c.label)}</td>` +
    `<td class="status s-${h(c.status)}">${h(c.status)}</td><td>${h(c.scheme)}</td><td>${expires ? h(when(expires)) : '—'}</td><td>${c.reason ? h(c.reason) : ''}</td></tr>`
  );
}
