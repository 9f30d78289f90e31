import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import t from 'tap';
import { AuditLog } from '../../src/audit/audit-log.js';
import { audit } from '../../src/audit/record.js';
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

t.test('audit() with the log off returns before it builds a record', async (t) => {
  const log = pino({ level: 'silent' });
  const off = new AuditLog({ enabled: false, max_bytes: 1 << 20, keep: 1 });
  const built = { off: 0, on: 0 };
  off.recordAt = () => void built.off++;
  audit({ audit: off, log }, { entity: 'alice', integration: 'svc', host: 'h', path: '/p' }, 'GET', 200, 1);
  t.equal(built.off, 0, 'recordAt was not reached');
  const on = new AuditLog({ max_bytes: 1 << 20, keep: 1 });
  on.recordAt = () => void built.on++;
  audit({ audit: on, log }, { entity: 'alice', integration: 'svc', host: 'h', path: '/p' }, 'GET', 200, 1);
  t.equal(built.on, 1, 'and is reached with the log on (the check above can fail)');
});

t.test('audit.enabled: false records nothing; GET /api/audit says so; a reload turns it on and off', async (t) => {
  const folder = mkdtempSync(join(tmpdir(), 'credproxy-audit-off-'));
  const file = join(folder, 'audit.log');
  const settings = (enabled: boolean, withFile = false) => `store: memory\n${LOOPBACK_EGRESS}audit: { enabled: ${enabled}${withFile ? `, file: ${file}` : ''} }\n`;
  const { up, proxy, dir } = await setup(t, {
    settings: settings(false),
    integrations: (up) => ({ svc: integrationYaml([`127.0.0.1:${up.port}`], '{ type: api_key, fields: [api_key] }', 'inject: { headers: { x-key: "{{api_key}}" } }\n') }),
  });
  await proxy.connect('alice', 'svc', { credentials: { api_key: 'k-1' } });
  const get = (path: string) => viaProxy(proxy.port, `${up.origin}${path}`, { headers: { 'x-entity-id': 'alice' } });
  const query = async () => {
    const r = await proxy.admin('GET', '/api/audit');
    const body = (await r.json()) as { entries?: Array<{ path: string }>; error?: { code: string; message: string } };
    return { status: r.status, header: r.headers.get('x-credproxy-error'), body };
  };
  const reload = (text: string) => {
    writeFileSync(join(dir, 'credproxy.yaml'), text);
    const outcome = proxy.reload();
    t.ok(outcome.ok, 'the reload applies');
    t.same(outcome.restartNeeded, [], 'audit.enabled applies live');
  };

  t.equal((await get('/off')).status, 200, 'requests are served with the audit log off');
  const answer = await query();
  t.equal(answer.status, 404, 'not an empty list');
  t.equal(answer.header, 'not_found');
  t.equal(answer.body.error?.code, 'not_found');
  t.match(answer.body.error?.message, /the audit log is turned off \(audit\.enabled: false in credproxy\.yaml\)/);

  reload(settings(true));
  t.match(proxy.logs.text, /audit log turned on by the reloaded settings/);
  t.same((await query()).body.entries, [], 'the request made while it was off was not kept');
  t.equal((await get('/on')).status, 200);
  t.same((await query()).body.entries?.map((e) => e.path), ['/on'], 'recorded again');

  reload(settings(false));
  t.match(proxy.logs.text, /audit log turned off by the reloaded settings/);
  t.equal((await get('/off-again')).status, 200);
  t.equal((await query()).status, 404);
  reload(settings(true));
  t.same((await query()).body.entries, [], 'turned off, the ring was dropped; nothing came in meanwhile');

  // With audit.file set and the log off, no file is written either.
  reload(settings(false, true));
  t.equal((await get('/off-with-file')).status, 200);
  await proxy.runtime.audit.flush();
  t.notOk(existsSync(file), 'no audit file while the log is off');
  reload(settings(true, true));
  t.equal((await get('/on-with-file')).status, 200);
  t.same((await query()).body.entries?.map((e) => e.path), ['/on-with-file']);
  t.same(paths(file), ['/on-with-file'], 'the file holds only what was recorded while on');
});
