import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

/*
 * The docs are split over README.md and docs/*.md and link to each other's sections: a
 * heading renamed or moved breaks those links silently, so every relative link and anchor
 * is checked here, and every page must be reachable from the README.
 */

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pages = [
  'README.md',
  'ARCHITECTURE.md',
  'CONTRIBUTING.md',
  'CHANGELOG.md',
  ...readdirSync(join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
].filter((f) => existsSync(join(root, f)));

/** The text outside fenced code blocks and inline code spans, where links are links. */
function prose(text: string): string[] {
  let fenced = false;
  const lines: string[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    else lines.push(fenced ? '' : line.replace(/`[^`]*`/g, '``'));
  }
  return lines;
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchorsOf(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  let fenced = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    const m = fenced ? null : /^#{1,6} (.*)$/.exec(line);
    if (!m) continue;
    const slug = m[1]!.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/ /g, '-');
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    out.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return out;
}

/** Relative link targets of a page: `[text](target)`, without external URLs. */
function links(text: string): Array<{ line: number; target: string }> {
  const out: Array<{ line: number; target: string }> = [];
  prose(text).forEach((line, i) => {
    for (const m of line.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = m[1]!;
      if (!/^[a-z][a-z0-9+.-]*:/i.test(target)) out.push({ line: i + 1, target });
    }
  });
  return out;
}

t.test('every relative link and anchor in the docs resolves', async (t) => {
  t.ok(pages.length >= 10, 'the pages are found');
  const broken: string[] = [];
  for (const page of pages) {
    const text = readFileSync(join(root, page), 'utf8');
    for (const { line, target } of links(text)) {
      const [path, anchor] = target.split('#', 2) as [string, string | undefined];
      const file = path === '' ? join(root, page) : join(root, dirname(page), decodeURIComponent(path));
      const where = `${page}:${line}: ${target}`;
      if (!existsSync(file)) {
        broken.push(`${where} (no such file)`);
        continue;
      }
      if (anchor === undefined || statSync(file).isDirectory()) continue;
      if (!file.endsWith('.md')) broken.push(`${where} (an anchor into a file that is not Markdown)`);
      else if (!anchorsOf(readFileSync(file, 'utf8')).has(anchor)) broken.push(`${where} (no heading ${relative(root, file)}#${anchor})`);
    }
  }
  t.same(broken, [], 'broken links');
});

t.test('every docs page is linked from the README and links back to it', async (t) => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  for (const page of pages.filter((p) => p.startsWith('docs/'))) {
    t.match(readme, `](${page})`, `README links ${page}`);
    const [title, blank, summary] = readFileSync(join(root, page), 'utf8').split('\n');
    t.match(title, /^# \S/, `${page} starts with its title`);
    t.equal(blank, '', `${page}: a blank line after the title`);
    t.ok(summary && summary.length > 20 && !summary.startsWith('#'), `${page}: a one-line summary after the title`);
    t.match(readFileSync(join(root, page), 'utf8').split('\n').slice(0, 8).join('\n'), '](../README.md', `${page} links back to the README`);
  }
});

t.test('the anchor rule matches GitHub on the headings the docs use', async (t) => {
  const sample = [
    '## credproxy.yaml',
    '### `jwt_bearer`: exchanging a signed assertion for an access token',
    '### Several processes on one machine: `--workers N`',
    '### 3. Connect a user',
    '## Logs',
    '## Logs',
  ].join('\n');
  t.same(
    [...anchorsOf(sample)],
    [
      'credproxyyaml',
      'jwt_bearer-exchanging-a-signed-assertion-for-an-access-token',
      'several-processes-on-one-machine---workers-n',
      '3-connect-a-user',
      'logs',
      'logs-1',
    ],
  );
});
