import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { integrationYaml, LOOPBACK_EGRESS, setup, viaProxy } from '../support/servers.js';

const paths = (file: string) =>
  readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { path: string }).path);

t.test('a reload that changes audit.file records the next requests in the new file', async (t) => {
  const folder = mkdtempSync(join(tmpdir(), 'credproxy-audit-reload-'));
  const first = join(folder, 'first.log');
  const second = join(folder, 'second.log');
  const settings = (file: string) => `store: memory\n${LOOPBACK_EGRESS}audit: { file: ${file} }\n`;
  const { up, proxy, dir } = await setup(t, {
    settings: settings(first),
    integrations: (up) => ({ svc: integrationYaml([`127.0.0.1:${up.port}`], '{ type: api_key, fields: [api_key] }', 'inject: { headers: { x-key: "{{api_key}}" } }\n') }),
  });
  await proxy.connect('alice', 'svc', { credentials: { api_key: 'k-1' } });
  const get = (path: string) => viaProxy(proxy.port, `${up.origin}${path}`, { headers: { 'x-entity-id': 'alice' } });

  t.equal((await get('/before')).status, 200);
  writeFileSync(join(dir, 'credproxy.yaml'), settings(second));
  const outcome = proxy.reload();
  t.same(outcome.restartNeeded, [], 'audit.* applies live: no restart asked for');
  t.equal(proxy.runtime.current.config.settings.audit.file, second);
  t.equal((await get('/after')).status, 200);

  // A query writes what is pending first; the old writer wrote its lines when it was replaced.
  const entries = (await (await proxy.admin('GET', '/api/audit')).json()) as { entries: Array<{ path: string }> };
  t.same(entries.entries.map((e) => e.path), ['/after'], 'GET /api/audit reads the new file');
  t.same(paths(second), ['/after'], 'the request after the reload is in the new file');
  t.same(paths(first), ['/before'], 'and the one before it stays in the old file, written in full');
  t.match(proxy.logs.text, /audit log reopened with the reloaded settings/);
});
