import type { IncomingMessage } from 'node:http';
import { makeConnectLink } from '../../api/connect.js';
import { AUDIT_OFF } from '../../audit/audit-log.js';
import { connectionView } from '../../api/views.js';
import { CredproxyError } from '../../errors.js';
import { checkEntityId } from '../../proxy/identify.js';
import { storeCall } from '../../store/failure.js';
import { checkLabel, labelled } from '../../store/label.js';
import type { Runtime } from '../../runtime.js';
import { connectionPath } from './entities.js';
import { csrfField, h, redirect, sendPage, signedIn, when } from './layout.js';
import { readForm } from './session.js';

/**
 * One connection: what the admin API shows of it (api/views.ts: field names, never values),
 * its recent audit records, and the actions on it (a new connect link, delete).
 */

const labelOf = (req: IncomingMessage) => {
  const v = new URL(req.url ?? '/', 'http://credproxy.invalid').searchParams.get('label');
  return v === null || v === '' ? undefined : checkLabel(v, 'the label');
};

async function find(rt: Runtime, entity: string, integration: string, label: string | undefined) {
  checkEntityId(entity, 'the entity id');
  const c = await storeCall('connection.get', () => rt.store.get(entity, integration, { label }));
  if (!c) throw new CredproxyError('not_found', `entity "${entity}" has no connection${labelled(label)} for "${integration}"`);
  return connectionView(c);
}

/** A connection credproxy refreshes: an OAuth token set with a refresh token. */
const refreshable = (rt: Runtime, c: { integration: string; fields: string[] }) =>
  c.fields.includes('refresh_token') && rt.current.integrations.has(c.integration);

const dl = (pairs: Array<[string, string]>) => `<dl class="grid">${pairs.map(([k, v]) => `<dt>${h(k)}</dt><dd>${v}</dd>`).join('')}</dl>`;

export const connectionPage = signedIn(async (rt, req, res, s, [entity, integration]) => {
  const label = labelOf(req);
  const c = await find(rt, entity!, integration!, label);
  // With the audit log off there are no recent requests to show, and the page says why.
  const auditLog = rt.audit;
  const audit = auditLog.enabled ? (await auditLog.query({ entity: c.entity, integration: c.integration, limit: 50 })).filter((e) => (e.label ?? null) === c.label).slice(-20).reverse() : [];
  const params = Object.entries(c.params);
  const rows = audit
    .map((e) => `<tr><td>${h(when(e.time))}</td><td>${h(e.method)}</td><td><code>${h(e.host + e.path)}</code></td><td>${e.status}</td><td>${e.ms} ms</td><td>${e.refreshed ? 'refreshed' : ''}</td></tr>`)
    .join('');
  sendPage(res, s, {
    title: `${c.integration} for ${c.entity}`,
    bodyHtml:
      dl([
        ['Entity', `<a href="/ui/entities?entity=${h(encodeURIComponent(c.entity))}"><code>${h(c.entity)}</code></a>`],
        ['Label', c.label === null ? 'default' : h(c.label)],
        ['Status', `<span class="status s-${h(c.status)}">${h(c.status)}</span>`],
        ['Last error', c.reason ? h(c.reason) : 'none'],
        ['Scheme', h(c.scheme)],
        ['Params', params.length ? params.map(([k, v]) => `<code>${h(k)}</code> = ${h(v)}`).join('<br>') : 'none'],
        ['Stored fields', c.fields.length ? h(c.fields.join(', ')) + ' (values are never shown)' : 'none'],
        ['Scopes', c.scopes ? h(c.scopes.join(' ')) : '—'],
        ['Expires', c.expires_at ? h(when(c.expires_at)) : '—'],
        ['Last refresh', c.refreshed_at ? h(when(c.refreshed_at)) : refreshable(rt, c) ? 'not refreshed since it was stored' : '—'],
        ['Updated', h(when(c.updated_at))],
      ]) +
      `<form method="post" action="/ui/entities/${h(encodeURIComponent(c.entity))}/connect" class="inline">${csrfField(s)}` +
      `<input type="hidden" name="integration" value="${h(c.integration)}"><input type="hidden" name="label" value="${h(c.label ?? '')}">` +
      `<button type="submit">New connect link</button></form>` +
      (rt.current.integrations.get(c.integration)?.verify
        ? `<form method="post" action="${h(connectionPath(c.entity, c.integration, c.label, '/verify'))}">${csrfField(s)}<p><button type="submit">Check the credentials (verify)</button></p></form>`
        : '') +
      `<p><a href="${h(connectionPath(c.entity, c.integration, c.label, '/delete'))}">Delete this connection…</a></p>` +
      `<h2>Recent requests</h2>${rows ? `<div class="scroll"><table><thead><tr><th>Time</th><th>Method</th><th>URL</th><th>Status</th><th>Took</th><th></th></tr></thead><tbody>${rows}</tbody></table></div>` : auditLog.enabled ? '<p>No request in the audit log yet.</p>' : `<p>Not recorded: ${h(AUDIT_OFF)}.</p>`}`,
  });
});

/** POST /ui/entities/{entity}/connect (integration, label): a link shown to copy. */
export const connectLinkAction = signedIn(async (rt, req, res, s, [entity]) => {
  const form = await readForm(rt, req, s);
  checkEntityId(entity!, 'the entity id');
  const integration = form.get('integration') ?? '';
  const labelText = form.get('label') ?? '';
  const label = labelText === '' ? undefined : checkLabel(labelText, 'the label');
  const link = await makeConnectLink(rt, entity!, integration, label, {});
  sendPage(res, s, {
    title: 'Connect link',
    bodyHtml:
      `<p class="ok" role="status">A single-use link for <code>${h(entity!)}</code> to connect ${h(integration)}${label ? ` as "${h(label)}"` : ''}; it expires at ${h(when(link.expires_at))}.</p>` +
      `<label for="link">Copy this link and send it to the user</label><input id="link" type="text" readonly value="${h(link.connect_url)}">` +
      `<p><a href="${h(connectionPath(entity!, integration, label))}">Back to the connection</a></p>`,
  });
});

export const deletePage = signedIn(async (rt, req, res, s, [entity, integration]) => {
  const c = await find(rt, entity!, integration!, labelOf(req));
  sendPage(res, s, {
    title: 'Delete this connection?',
    bodyHtml:
      `<p>The ${c.label === null ? 'default' : `"${h(c.label)}"`} ${h(c.integration)} connection of <code>${h(c.entity)}</code> and its stored credentials are deleted; requests for it then fail until the user connects again.</p>` +
      `<form method="post" action="${h(connectionPath(c.entity, c.integration, c.label, '/delete'))}">${csrfField(s)}<button type="submit" class="danger">Delete</button></form>` +
      `<p><a href="${h(connectionPath(c.entity, c.integration, c.label))}">Cancel</a></p>`,
  });
});

export const deleteAction = signedIn(async (rt, req, res, s, [entity, integration]) => {
  await readForm(rt, req, s);
  const label = labelOf(req);
  checkEntityId(entity!, 'the entity id');
  await storeCall('connection.delete', () => rt.store.delete(entity!, integration!, label));
  rt.log.info({ entity, integration, label, via: 'dashboard' }, 'connection deleted');
  redirect(res, `/ui/entities?entity=${encodeURIComponent(entity!)}&deleted=${encodeURIComponent(integration!)}`);
});
