import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { CredproxyError, ERRORS, isCredproxyError, sendError } from '../src/errors.js';

/**
 * The error registry against the documentation. README.md's "Errors" section holds a
 * markdown table `| status | code | when |`; a row may name several codes (`a` / `b`).
 */
function readmeErrors(): Array<{ status: number; codes: string[]; line: number }> {
  const text = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const lines = text.split('\n');
  const start = lines.findIndex((l) => /^#+\s+Errors\b/.test(l));
  if (start === -1) return [];
  const rows: Array<{ status: number; codes: string[]; line: number }> = [];
  for (let i = start + 1; i < lines.length && !/^#+\s/.test(lines[i]!); i++) {
    const cells = lines[i]!.split('|').map((c) => c.trim());
    if (cells.length < 4 || !/^\d{3}$/.test(cells[1]!)) continue;
    rows.push({ status: Number(cells[1]), codes: [...cells[2]!.matchAll(/`([a-z_]+)`/g)].map((m) => m[1]!), line: i + 1 });
  }
  return rows;
}

/** DESIGN.md, "Errors that credproxy itself answers" (contract): status and codes, row by row. */
const CONTRACT: Array<[number, string[]]> = [
  [400, ['entity_required']],
  [400, ['bad_request']],
  [401, ['unauthorized']],
  [403, ['host_denied', 'entity_denied']],
  [407, ['proxy_auth_required']],
  [424, ['connection_missing']],
  [424, ['connection_expired']],
  [429, ['rate_limited']],
  [502, ['upstream_error', 'refresh_failed']],
  [503, ['store_unavailable']],
  [504, ['upstream_timeout']],
];

t.test('README.md documents every error code with the status credproxy sends', async (t) => {
  const rows = readmeErrors();
  t.ok(rows.length > 0, 'README.md has an Errors table');
  const documented = new Set<string>();
  for (const row of rows) {
    t.ok(row.codes.length > 0, `README.md:${row.line} names a code`);
    for (const code of row.codes) {
      documented.add(code);
      const known = ERRORS[code as keyof typeof ERRORS];
      t.ok(known, `README.md:${row.line}: ${code} is in ERRORS`);
      t.equal(known?.status, row.status, `README.md:${row.line}: ${code} is ${row.status}`);
    }
  }
  for (const code of Object.keys(ERRORS)) t.ok(documented.has(code), `${code} is documented in README.md`);
});

t.test('every contract code of DESIGN.md is in ERRORS with its status', async (t) => {
  for (const [status, codes] of CONTRACT) {
    for (const code of codes) t.equal(ERRORS[code as keyof typeof ERRORS]?.status, status, `${code}: ${status}`);
  }
});

t.test('CredproxyError and sendError, on a real server', async (t) => {
  const e = new CredproxyError('rate_limited', undefined, { 'retry-after': '3' });
  t.equal(e.message, ERRORS.rate_limited.message, 'the registry message by default');
  t.equal(e.status, 429);
  t.ok(isCredproxyError(e));
  t.notOk(isCredproxyError(new Error('x')));
  const server = http.createServer((req, res) => {
    if (req.url === '/late') res.writeHead(200).write('partial');
    sendError(res, e);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const r = await fetch(`${base}/`);
  t.equal(r.status, 429);
  t.equal(r.headers.get('retry-after'), '3');
  t.equal(r.headers.get('x-credproxy-error'), 'rate_limited');
  t.match(r.headers.get('content-type'), /application\/json/);
  t.same(await r.json(), { error: { code: 'rate_limited', message: ERRORS.rate_limited.message } });
  await t.rejects(fetch(`${base}/late`).then((l) => l.text()), 'a response under way is cut off instead');
});
