import { readFileSync } from 'node:fs';
import t from 'tap';
import { RESTART_ONLY, SETTINGS_APPLY, withValuesOf } from '../../src/config/apply.js';
import { loadConfig } from '../support/config.js';
import { settingsSpec } from '../../src/config/schema.js';
import type { ObjectSpec, Spec } from '../../src/config/spec.js';
import { configDir } from '../support/servers.js';

/** `listen`, `tls.intercept`, … : every key path of an object spec. */
function keyPaths(spec: ObjectSpec, prefix = ''): string[] {
  return Object.entries(spec.props).flatMap(([k, v]: [string, Spec]) => (v.kind === 'object' ? keyPaths(v, `${prefix}${k}.`) : [`${prefix}${k}`]));
}

t.test('the table says, for every key of credproxy.yaml, whether it applies live or needs a restart', async (t) => {
  t.same(Object.keys(SETTINGS_APPLY).sort(), keyPaths(settingsSpec).sort(), 'exactly the keys of the schema');
  for (const [key, when] of Object.entries(SETTINGS_APPLY)) t.ok(when === 'live' || when === 'restart', key);
  for (const key of ['audit.enabled', 'audit.file', 'audit.max_bytes', 'audit.keep', 'metrics.requests', 'log.level', 'clients']) t.equal(SETTINGS_APPLY[key as keyof typeof SETTINGS_APPLY], 'live', key);
});

t.test("the reload section of docs/operations.md names exactly the restart-only settings", async (t) => {
  const readme = readFileSync(new URL('../../docs/operations.md', import.meta.url), 'utf8');
  const start = readme.indexOf('- These settings are read once at start:');
  t.not(start, -1, 'the statement is there');
  const end = readme.indexOf('\n- ', start + 1);
  const bullet = readme.slice(start, end);
  const [listed, rest] = bullet.split('Changing one') as [string, string];
  const named = [...listed.matchAll(/`([a-z_.]+)`/g)].map((m) => m[1]!);
  t.same(named.sort(), [...RESTART_ONLY].sort());
  t.match(rest.replace(/\s+/g, ' '), /Every other setting, `audit\.\*`, `metrics\.requests` and `log\.level` included, applies at once/);
});

t.test('withValuesOf keeps the running value of each key, without touching either settings object', async (t) => {
  const running = loadConfig(configDir('store: memory\nlimits: { header_count: 50 }\n'), { env: {} }).settings;
  const next = loadConfig(configDir('store: sqlite:./x.db\nlimits: { header_count: 9, max_tunnels: 7 }\n'), { env: {} }).settings;
  const kept = withValuesOf(next, running, RESTART_ONLY);
  t.equal(kept.store, 'memory');
  t.equal(kept.limits.header_count, 50);
  t.equal(kept.limits.max_tunnels, 7, 'a live limit in the same section takes the new value');
  t.equal(next.limits.header_count, 9, 'next unchanged');
});
