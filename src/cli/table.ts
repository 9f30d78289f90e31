/**
 * Plain text output for people: aligned columns with a header row, and `key: value` blocks.
 * No colours or box drawing, so the output pastes cleanly into tickets and greps well.
 */
export function table(headers: string[], rows: string[][]): string {
  if (rows.length === 0) return '';
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return `${[line(headers), ...rows.map(line)].join('\n')}\n`;
}

export function keyValues(pairs: Array<[string, string]>): string {
  const width = Math.max(...pairs.map(([k]) => k.length));
  return `${pairs.map(([k, v]) => `${`${k}:`.padEnd(width + 1)}  ${v}`).join('\n')}\n`;
}

/** How a value the API gave looks in a cell: '-' for nothing, lists joined. */
export function cell(v: unknown): string {
  if (v === null || v === undefined || v === '') return '-';
  if (Array.isArray(v)) return v.length === 0 ? '-' : v.map(cell).join(',');
  if (typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>);
    return entries.length === 0 ? '-' : entries.map(([k, x]) => `${k}=${cell(x)}`).join(',');
  }
  return String(v);
}
