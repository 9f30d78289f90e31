import { verifyConnection } from '../../api/verify.js';
import { CredproxyError } from '../../errors.js';
import { checkEntityId } from '../../proxy/identify.js';
import { storeCall } from '../../store/failure.js';
import { checkLabel, labelled } from '../../store/label.js';
import { connectionPath } from './entities.js';
import { h, sendPage, signedIn } from './layout.js';
import { readForm } from './session.js';

/**
 * POST /ui/entities/{entity}/connections/{integration}/verify[?label=]: the integration's
 * `verify` request with the stored credentials, as a PUT runs it (api/verify.ts). It only
 * reports: the connection is not changed, whatever the upstream says.
 */
export const verifyAction = signedIn(async (rt, req, res, s, [entity, integration]) => {
  await readForm(rt, req, s);
  checkEntityId(entity!, 'the entity id');
  const labelText = new URL(req.url ?? '/', 'http://credproxy.invalid').searchParams.get('label');
  const label = labelText ? checkLabel(labelText, 'the label') : undefined;
  const live = rt.current.integrations.get(integration!);
  if (!live) throw new CredproxyError('not_found', `no integration named "${integration}"`);
  const c = await storeCall('connection.get', () => rt.store.get(entity!, integration!, { label }));
  if (!c) throw new CredproxyError('not_found', `entity "${entity}" has no connection${labelled(label)} for "${integration}"`);
  const v = await verifyConnection(rt, live, c);
  if (!v) throw new CredproxyError('bad_request', `"${integration}" declares no verify request; see docs/configuration.md#verifying-connections`);
  rt.log.info({ entity, integration, label, ok: v.ok, status: v.status, via: 'dashboard' }, 'connection verified');
  const upstream = v.status === null ? 'no answer' : `HTTP ${v.status}`;
  sendPage(res, s, {
    title: v.ok ? 'The credentials work' : v.refused ? 'The credentials were refused' : 'Could not tell',
    bodyHtml:
      `<p class="${v.ok ? 'ok' : 'error'}" role="status">${h(integration!)} for <code>${h(entity!)}</code>: ${h(upstream)}. ${h(v.message)}</p>` +
      '<p>The connection was not changed.</p>' +
      `<p><a href="${h(connectionPath(entity!, integration!, label))}">Back to the connection</a></p>`,
  });
});
