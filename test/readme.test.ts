import { readFileSync } from 'node:fs';
import t from 'tap';
import { SCHEMES } from '../src/auth/registry.js';
import { integrationSpecFor, settingsSpec } from '../src/config/schema.js';
import type { ObjectSpec, Spec } from '../src/config/spec.js';
import { ERRORS } from '../src/errors.js';

/*
 * The reference tables moved from the README to docs/ pages; the tests follow them there
 * and find each table by its `## ` heading, so renaming or moving one fails here.
 */

/** The text of one `## Title` section of a docs page, up to the next `## `. */
function section(page: string, title: string): string {
  const text = readFileSync(new URL(`../${page}`, import.meta.url), 'utf8');
  const start = text.indexOf(`\n## ${title}\n`);
  if (start === -1) return '';
  const end = text.indexOf('\n## ', start + 1);
  return text.slice(start, end === -1 ? undefined : end);
}

/** Rows of the first Markdown table in a text, as trimmed cells, without header and rule. */
function tableRows(text: string): string[][] {
  const lines = text.split('\n').filter((l) => l.startsWith('|'));
  return lines.slice(2).map((l) => l.slice(1, -1).split('|').map((c) => c.trim()));
}

t.test('the Errors table of docs/errors.md lists exactly the codes of src/errors.ts, with their statuses', async (t) => {
  const errors = section('docs/errors.md', 'Errors');
  t.not(errors, '', 'docs/errors.md has a `## Errors` section');
  t.match(errors, /\| status \| code \| when \|/);
  const rows = tableRows(errors);
  const documented = new Map(rows.map(([status, code]) => [code!, Number(status)]));
  t.equal(documented.size, rows.length, 'no code documented twice');
  t.same([...documented.keys()].sort(), Object.keys(ERRORS).sort());
  for (const [code, { status }] of Object.entries(ERRORS)) t.equal(documented.get(code), status, `${code} is ${status}`);
  for (const row of rows) t.ok(row[2] && row[2].length > 10, `${row[1]} says when`);
});

/** `listen`, `tls.intercept`, … : every key path of an object spec. */
function keyPaths(spec: ObjectSpec, prefix = ''): string[] {
  return Object.entries(spec.props).flatMap(([k, v]: [string, Spec]) =>
    v.kind === 'object' ? keyPaths(v, `${prefix}${k}.`) : [`${prefix}${k}`],
  );
}

t.test('the Configuration section of docs/configuration.md names every key the config accepts', async (t) => {
  const config = section('docs/configuration.md', 'Configuration');
  t.not(config, '', 'docs/configuration.md has a `## Configuration` section');
  for (const key of keyPaths(settingsSpec)) t.match(config, `\`${key}\``, `credproxy.yaml: ${key}`);
  for (const key of Object.keys(integrationSpecFor(SCHEMES).props)) t.match(config, `\`${key}\``, `integration file: ${key}`);
});
