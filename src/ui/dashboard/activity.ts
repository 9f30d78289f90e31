import { AUDIT_OFF, type AuditEntry } from '../../audit/audit-log.js';
import { h, sendPage, signedIn } from './layout.js';

/**
 * GET /ui/activity: the last hour's proxied requests per integration, split by status class,
 * with refreshes, from the audit log (this instance's, as GET /api/audit reads it). A bar
 * chart drawn as inline SVG (attributes, no style, no script: the CSP allows it as is) and
 * the same figures as a table.
 */

const HOUR_MS = 60 * 60 * 1000;
/** Enough for a busy hour on one page; past it, the page says the figures are the latest ones only. */
const MAX_ENTRIES = 10_000;
const CLASSES = [
  { key: '2xx', test: (s: number) => s < 300, color: '#15803d' },
  { key: '3xx', test: (s: number) => s < 400, color: '#1d4ed8' },
  { key: '4xx', test: (s: number) => s < 500, color: '#b45309' },
  { key: '5xx', test: () => true, color: '#b91c1c' },
] as const;
type ClassKey = (typeof CLASSES)[number]['key'];

interface Row {
  integration: string;
  counts: Record<ClassKey, number>;
  total: number;
  refreshed: number;
}

export function tally(entries: readonly AuditEntry[]): Row[] {
  const rows = new Map<string, Row>();
  for (const e of entries) {
    const row = rows.get(e.integration) ?? { integration: e.integration, counts: { '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 }, total: 0, refreshed: 0 };
    row.counts[CLASSES.find((c) => c.test(e.status))!.key]++;
    row.total++;
    if (e.refreshed) row.refreshed++;
    rows.set(e.integration, row);
  }
  return [...rows.values()].sort((a, b) => b.total - a.total || a.integration.localeCompare(b.integration));
}

/** One stacked bar per integration; the widths are shares of the busiest one. */
function chart(rows: Row[]): string {
  // Drawn at about a phone's width (close to 1:1 there); the stylesheet caps how far a desktop enlarges it.
  const W = 420;
  const LABEL = 110;
  const BAR = 22;
  const max = Math.max(...rows.map((r) => r.total));
  const bars = rows.map((r, i) => {
    let x = LABEL;
    const y = i * (BAR + 10);
    const parts = CLASSES.filter((c) => r.counts[c.key] > 0).map((c) => {
      const w = Math.max(1, ((W - LABEL - 60) * r.counts[c.key]) / max);
      const rect = `<rect x="${x.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${BAR}" fill="${c.color}"><title>${h(r.integration)}: ${r.counts[c.key]} × ${c.key}</title></rect>`;
      x += w;
      return rect;
    });
    const name = r.integration.length > 14 ? `${r.integration.slice(0, 13)}…` : r.integration;
    return `<text x="${LABEL - 8}" y="${y + 16}" text-anchor="end">${h(name)}</text>${parts.join('')}<text x="${(x + 6).toFixed(1)}" y="${y + 16}">${r.total}</text>`;
  });
  const height = rows.length * (BAR + 10);
  const legend = CLASSES.map((c, i) => `<rect x="${LABEL + i * 62}" y="${height + 4}" width="12" height="12" fill="${c.color}"/><text x="${LABEL + i * 62 + 16}" y="${height + 15}">${c.key}</text>`).join('');
  return (
    `<svg class="chart" role="img" aria-labelledby="chart-title" viewBox="0 0 ${W} ${height + 24}" width="100%" font-size="13" font-family="system-ui,sans-serif" fill="#222">` +
    `<title id="chart-title">Requests per integration in the last hour, by status</title>${bars.join('')}${legend}</svg>`
  );
}

export const activityPage = signedIn(async (rt, _req, res, s) => {
  if (!rt.audit.enabled) {
    // Drawn from the audit log alone: with it off, say so rather than show an empty hour.
    sendPage(res, s, { title: 'Activity', bodyHtml: `<p role="status">No activity to show: ${h(AUDIT_OFF)}.</p>` });
    return;
  }
  const since = Date.now() - HOUR_MS;
  const entries = await rt.audit.query({ since, limit: MAX_ENTRIES });
  const rows = tally(entries);
  const table =
    '<div class="scroll"><table><thead><tr><th>Integration</th><th>Requests</th>' +
    `${CLASSES.map((c) => `<th>${c.key}</th>`).join('')}<th>Refreshed</th></tr></thead><tbody>` +
    rows.map((r) => `<tr><td>${h(r.integration)}</td><td>${r.total}</td>${CLASSES.map((c) => `<td>${r.counts[c.key]}</td>`).join('')}<td>${r.refreshed}</td></tr>`).join('') +
    '</tbody></table></div>';
  sendPage(res, s, {
    title: 'Activity',
    bodyHtml: rows.length
      ? `<p>${entries.length}${entries.length === MAX_ENTRIES ? ' (the latest; there were more)' : ''} proxied request${entries.length === 1 ? '' : 's'} in the last hour on this instance, from the audit log.</p>${chart(rows)}${table}`
      : '<p>No proxied request in the last hour on this instance (the audit log is empty for it).</p>',
  });
});
