import { connectionView } from '../../api/views.js';
import { checkEntityId } from '../../proxy/identify.js';
import { storeCall } from '../../store/failure.js';
import type { Connection } from '../../store/types.js';
import { csrfField, h, sendPage, signedIn, when } from './layout.js';

/**
 * GET /ui/entities?entity=&status=&integration=&label=: one entity's connections, filtered.
 * Found by id: the store has no cheap index of entities (its backend's keys() walks every
 * record, which is for migrate and export), so there is no list of all of them yet.
 */

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
    `<div class="field"><label for="entity">Entity id</label><input id="entity" name="entity" type="text" value="${h(entity)}" required maxlength="256"></div>` +
    `<div><label for="status">Status</label><select id="status" name="status">${option('', 'any', status)}${STATUSES.map((x) => option(x, x, status)).join('')}</select></div>` +
    `<div><label for="integration">Integration</label><select id="integration" name="integration">${option('', 'any', integration)}${names.map((n) => option(n, n, integration)).join('')}</select></div>` +
    `<div class="field"><label for="label">Label</label><input id="label" name="label" type="text" value="${h(label)}" maxlength="64" placeholder="any"></div>` +
    '<div><button type="submit">Show</button></div></form>';
  if (!entity) {
    return sendPage(res, s, { title: 'Entities', bodyHtml: `${search}<p>Give an entity id to see its connections.</p>` });
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
