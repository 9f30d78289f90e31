import { integrationView } from '../../api/views.js';
import type { Runtime } from '../../runtime.js';
import { connectionPath, scanConnections } from './entities.js';
import { h, sendPage, signedIn, when } from './layout.js';

/** Connections shown per integration; the rest are on the Entities page, filtered to it. */
export const USED_BY = 5;

/** The last reload on this instance: its problems (file:line) while the last good config stays live. */
function reloadNote(r: Runtime['lastReload']): string {
  if (!r) return '';
  const at = h(when(new Date(r.at).toISOString()));
  if (r.ok) return `<p class="ok" role="status">The last config reload (${at}, ${h(r.trigger)}) was applied.</p>`;
  return (
    `<div class="error" role="alert"><p>The last config reload (${at}, ${h(r.trigger)}) failed; the config below is the last good one, still live. Fix these and save again:</p>` +
    `<ul>${r.problems.map((p) => `<li><code>${h(p)}</code></li>`).join('')}</ul></div>`
  );
}

/**
 * GET /ui/integrations: what the admin API shows of each integration (api/views.ts, no
 * secret): hosts, schemes with their scopes and fields, params; and the first connections
 * that use it (one bounded page of the store's scan each, src/store/scan.ts).
 */
export const integrationsPage = signedIn(async (rt, _req, res, s) => {
  const list = [...rt.current.config.integrations.values()].map(integrationView);
  const used = await Promise.all(list.map((i) => scanConnections(rt, { integration: i.name, limit: USED_BY })));
  const rows = list.map((i, n) => {
    const page = used[n]!;
    const all = `/ui/entities?integration=${encodeURIComponent(i.name)}`;
    const usedBy = page.items.length
      ? `<ul>${page.items
          .slice(0, USED_BY)
          .map((c) => `<li><a href="${h(connectionPath(c.entity, c.integration, c.label))}"><code>${h(c.entity)}</code>${c.label === undefined ? '' : ` (${h(c.label)})`}</a> <span class="status s-${h(c.status)}">${h(c.status)}</span></li>`)
          .join('')}</ul>` + (page.next || page.items.length > USED_BY ? `<a href="${h(all)}">All connections to ${h(i.name)} →</a>` : '')
      : page.next
        ? `none found in the first part of the store; <a href="${h(all)}">look further</a>`
        : 'none yet';
    const schemes = i.schemes
      .map((sc) => {
        const list = 'scopes' in sc ? (sc.scopes as string[] | undefined) : undefined;
        const scopes = list ? ` — scopes: ${h(list.join(' '))}` : '';
        const fields = sc.fields.length ? ` — fields: ${h(sc.fields.map((f) => f.name + (f.optional ? '?' : '')).join(', '))}` : '';
        return `<li><code>${h(sc.type)}</code>${sc.default && i.schemes.length > 1 ? ' (default)' : ''}${scopes}${fields}</li>`;
      })
      .join('');
    const params = i.params.length
      ? `<ul>${i.params.map((p) => `<li><code>${h(p.name)}</code>${p.pattern ? ` matching <code>${h(p.pattern)}</code>` : ''}${p.default ? ` (default ${h(p.default)})` : ''}${p.description ? `: ${h(p.description)}` : ''}</li>`).join('')}</ul>`
      : 'none';
    return (
      `<section aria-labelledby="i-${h(i.name)}"><h2 id="i-${h(i.name)}">${h(i.name)}</h2>` +
      (i.description ? `<p>${h(i.description)}</p>` : '') +
      `<dl class="grid"><dt>Hosts</dt><dd>${i.hosts.map((x) => `<code>${h(x)}</code>`).join(', ')}</dd>` +
      `<dt>Schemes</dt><dd><ul>${schemes}</ul></dd><dt>Params</dt><dd>${params}</dd><dt>Used by</dt><dd>${usedBy}</dd></dl></section>`
    );
  });
  sendPage(res, s, {
    title: 'Integrations',
    bodyHtml:
      `<p>${list.length} integration${list.length === 1 ? '' : 's'} in the current config.</p>${reloadNote(rt.lastReload)}` +
      (rows.join('') || '<p>No integration is configured yet: add a file under <code>integrations/</code>.</p>'),
  });
});
