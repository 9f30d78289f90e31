import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { isConfigFileName, type ReloadOutcome } from '../src/reload.js';
import { configDir, LOOPBACK_EGRESS, startProxy, startUpstream, viaProxy, type TestProxy, type Upstream } from './support/servers.js';
import { Waiter } from './support/waiter.js';

const demo = (port: number, header = 'Authorization', prefix = 'Bearer ') =>
  `hosts: ["127.0.0.1:${port}"]\nupstream: http\nauth: { type: bearer }\ninject:\n  headers:\n    ${header}: "${prefix}{{token}}"\n`;

async function setup(t: Test, opts: { watch?: boolean; sighup?: boolean } = {}) {
  const up = await startUpstream();
  const other = await startUpstream();
  const dir = configDir(`store: memory\n${LOOPBACK_EGRESS}`, { demo: demo(up.port) });
  const reloads = new Waiter<ReloadOutcome>();
  const proxy = await startProxy(dir, { watch: opts.watch ?? true, reloadOnSighup: opts.sighup ?? false, reloadDebounceMs: 50, onReload: reloads.push });
  t.teardown(async () => {
    await proxy.close();
    await up.close();
    await other.close();
    rmSync(dir, { recursive: true, force: true });
  });
  t.equal((await proxy.connect('alice', 'demo', { credentials: { token: 'tok-demo-1' } })).status, 200);
  return { up, other, dir, reloads, proxy };
}

const get = (proxy: TestProxy, up: Upstream, path = '/x') => viaProxy(proxy.port, `${up.origin}${path}`, { headers: { 'X-Entity-Id': 'alice' } });

t.test('adding an integration file applies without a restart', async (t) => {
  const { other, dir, reloads, proxy } = await setup(t);
  // Before: the other host belongs to no integration, so it is passthrough (no credential).
  await get(proxy, other);
  t.notOk(other.seen.at(-1)!.headers.authorization);
  writeFileSync(join(dir, 'integrations', 'second.yaml'), demo(other.port));
  const outcome = await reloads.until((o) => o.ok && (o.added ?? []).includes('second'));
  t.same(outcome.removed, []);
  t.equal((await proxy.connect('alice', 'second', { credentials: { token: 'tok-second' } })).status, 200);
  await get(proxy, other);
  t.equal(other.seen.at(-1)!.headers.authorization, 'Bearer tok-second');
  t.match(proxy.logs.text, /config reloaded/);
});

t.test('editing an integration file changes what is injected', async (t) => {
  const { up, dir, reloads, proxy } = await setup(t);
  await get(proxy, up);
  t.equal(up.seen.at(-1)!.headers.authorization, 'Bearer tok-demo-1');
  writeFileSync(join(dir, 'integrations', 'demo.yaml'), demo(up.port, 'X-Api-Key', ''));
  const outcome = await reloads.until((o) => o.ok && (o.changed ?? []).includes('demo'));
  t.same(outcome.added, []);
  await get(proxy, up);
  t.equal(up.seen.at(-1)!.headers['x-api-key'], 'tok-demo-1');
  t.notOk(up.seen.at(-1)!.headers.authorization);
});

t.test('deleting and renaming integration files', async (t) => {
  const { up, dir, reloads, proxy } = await setup(t);
  renameSync(join(dir, 'integrations', 'demo.yaml'), join(dir, 'integrations', 'renamed.yaml'));
  const renamed = await reloads.until((o) => o.ok && (o.added ?? []).includes('renamed'));
  t.same(renamed.removed, ['demo']);
  // The connection belongs to the old name: the host is now owned by "renamed", which alice has not connected.
  const r = await get(proxy, up);
  t.equal(r.status, 424);
  t.equal(r.headers['x-credproxy-error'], 'connection_missing');
  rmSync(join(dir, 'integrations', 'renamed.yaml'));
  const removed = await reloads.until((o) => o.ok && (o.removed ?? []).includes('renamed'));
  t.same(removed.added, []);
  t.equal(proxy.runtime.current.config.integrations.size, 0);
  const after = await get(proxy, up);
  t.equal(after.status, 200, 'the host is passthrough now');
  t.notOk(up.seen.at(-1)!.headers.authorization, 'and never gets a credential');
});

t.test('a broken edit is logged with file:line and the last good config stays live', async (t) => {
  const { up, dir, reloads, proxy } = await setup(t);
  const before = proxy.runtime.current;
  const file = join(dir, 'integrations', 'demo.yaml');
  writeFileSync(file, `hosts: ["127.0.0.1:${up.port}"]\nupstream: http\nauth:\n  type: bearer\n  tokn_url: x\n`);
  const outcome = await reloads.until((o) => !o.ok);
  t.match(outcome.problems, [`${file}:5: auth.tokn_url: unknown key`]);
  t.equal(proxy.runtime.current, before, 'the running snapshot was not replaced');
  t.match(proxy.logs.text, /config reload failed; the last good config stays live/);
  t.match(proxy.logs.text, /demo\.yaml:5: auth\.tokn_url: unknown key/);
  await get(proxy, up);
  t.equal(up.seen.at(-1)!.headers.authorization, 'Bearer tok-demo-1');
  // A syntax error, then the fix: the fix applies.
  writeFileSync(file, 'hosts: [unclosed\n');
  const syntax = await reloads.until((o) => !o.ok && (o.problems ?? []).some((p) => p.startsWith(`${file}:`)));
  t.ok(syntax.problems!.length > 0);
  writeFileSync(file, demo(up.port, 'X-Fixed', ''));
  await reloads.until((o) => o.ok);
  await get(proxy, up);
  t.equal(up.seen.at(-1)!.headers['x-fixed'], 'tok-demo-1');
  const metrics = await (await fetch(`${proxy.url}/metrics`)).text();
  t.match(metrics, /credproxy_config_reloads_total\{outcome="invalid"\} [1-9]/);
});

t.test('changing listen or store says a restart is needed and keeps the running values', async (t) => {
  const { dir, reloads, proxy } = await setup(t);
  const headerCount = proxy.runtime.current.config.settings.limits.header_count;
  writeFileSync(join(dir, 'credproxy.yaml'), 'store: sqlite:./nowhere/x.db\nlisten: 127.0.0.1:1\npassthrough: deny\nlog: { level: trace }\nlimits: { header_count: 9, replay_body_bytes: 1234 }\n');
  const outcome = await reloads.until((o) => o.ok && (o.restartNeeded ?? []).length > 0);
  t.same(outcome.restartNeeded, ['store', 'limits.header_count']);
  const settings = proxy.runtime.current.config.settings;
  t.equal(settings.store, 'memory');
  t.equal(settings.limits.header_count, headerCount, 'a limit the server took at start keeps its running value');
  t.equal(settings.limits.replay_body_bytes, 1234, 'a limit read per request applies');
  t.equal(settings.passthrough, 'deny', 'the other settings apply');
  t.equal(proxy.runtime.log.level, 'trace', 'the log level too');
  t.match(proxy.logs.text, /restart credproxy to apply/);
  t.ok(Object.isFrozen(settings));
});

t.test('a request in flight finishes with the config it started with', async (t) => {
  let release: () => void = () => {};
  const held = new Promise<void>((r) => (release = r));
  const slow = await startUpstream((_req, res) => {
    void held.then(() => res.end('done'));
  });
  t.teardown(() => slow.close());
  const { dir, reloads, proxy } = await setup(t);
  writeFileSync(join(dir, 'integrations', 'slow.yaml'), demo(slow.port));
  await reloads.until((o) => o.ok && (o.added ?? []).includes('slow'));
  t.equal((await proxy.connect('alice', 'slow', { credentials: { token: 'tok-slow' } })).status, 200);
  const pending = get(proxy, slow);
  // Wait until the upstream holds the request, then take the integration away.
  while (slow.seen.length === 0) await new Promise((r) => setImmediate(r));
  rmSync(join(dir, 'integrations', 'slow.yaml'));
  await reloads.until((o) => o.ok && (o.removed ?? []).includes('slow'));
  release();
  const r = await pending;
  t.equal(r.status, 200);
  t.equal(r.body.toString(), 'done');
  t.equal(slow.seen[0]!.headers.authorization, 'Bearer tok-slow');
  const line = proxy.logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'proxied' && l.integration === 'slow');
  t.ok(line, 'the request was logged under the integration it started with');
});

t.test('integrations/ deleted and created again is still watched', async (t) => {
  const { up, dir, reloads, proxy } = await setup(t);
  rmSync(join(dir, 'integrations'), { recursive: true });
  await reloads.until((o) => o.ok && (o.removed ?? []).includes('demo'));
  mkdirSync(join(dir, 'integrations'));
  writeFileSync(join(dir, 'integrations', 'demo.yaml'), demo(up.port));
  await reloads.until((o) => o.ok && (o.added ?? []).includes('demo'));
  // An edit inside the new folder: only a watch on the new folder sees it.
  writeFileSync(join(dir, 'integrations', 'demo.yaml'), demo(up.port, 'X-New-Folder', ''));
  await reloads.until((o) => o.ok && (o.changed ?? []).includes('demo'));
  await get(proxy, up);
  t.equal(up.seen.at(-1)!.headers['x-new-folder'], 'tok-demo-1');
});

t.test('only YAML files and integrations/ trigger a reload', async (t) => {
  for (const name of ['credproxy.yaml', 'github.yaml', 'x.yml', 'integrations']) t.ok(isConfigFileName(name), name);
  for (const name of ['.github.yaml.swp', 'github.yaml~', '4913', 'notes.txt', 'github.yaml.bak']) t.notOk(isConfigFileName(name), name);
});

t.test('SIGHUP reloads', async (t) => {
  const { other, dir, reloads, proxy } = await setup(t, { watch: false, sighup: true });
  writeFileSync(join(dir, 'integrations', 'second.yaml'), demo(other.port));
  process.kill(process.pid, 'SIGHUP');
  const outcome = await reloads.next();
  t.ok(outcome.ok);
  t.same(outcome.added, ['second']);
  t.ok(proxy.runtime.current.config.integrations.has('second'));
});

t.test('reload() with nothing changed reports nothing changed', async (t) => {
  const { proxy } = await setup(t, { watch: false });
  // As the OAuth code does once the port is bound: the public_url then names the real port.
  const real = `http://127.0.0.1:${proxy.port}`;
  proxy.runtime.current = { ...proxy.runtime.current, config: { ...proxy.runtime.current.config, settings: { ...proxy.runtime.current.config.settings, public_url: real } } };
  const before = proxy.runtime.current;
  const outcome = proxy.reload();
  t.equal(proxy.runtime.current, before, 'nothing changed: the snapshot stays');
  t.equal(proxy.runtime.current.config.settings.public_url, real, 'a public_url derived from port 0 keeps the bound port');
  t.match(proxy.logs.text, /config unchanged/);
  t.same(outcome, { ok: true, added: [], removed: [], changed: [], restartNeeded: [] });
});

t.test('every kind of broken edit is reported with its file:line and changes nothing', async (t) => {
  const { up, dir, proxy } = await setup(t, { watch: false });
  const before = proxy.runtime.current;
  const file = join(dir, 'integrations', 'demo.yaml');
  const settingsFile = join(dir, 'credproxy.yaml');
  const cases: Array<[string, string, string, RegExp]> = [
    ['a list where a mapping goes', file, `hosts: ["127.0.0.1:${up.port}"]\nauth: [1, 2]\n`, /demo\.yaml:2: auth\[0\]: expected a mapping/],
    ['a number out of range', file, `hosts: ["127.0.0.1:${up.port}"]\nauth: { type: bearer }\nrefresh_on: [200]\n`, /demo\.yaml:3: refresh_on\[0\]: 200 is out of range/],
    ['a string where a list goes', file, `hosts: "127.0.0.1:${up.port}"\nauth: { type: bearer }\n`, /demo\.yaml:1: hosts: expected a list/],
    ['a missing environment variable', file, `hosts: ["127.0.0.1:${up.port}"]\nauth:\n  type: api_key\ninject:\n  headers:\n    X-Key: "\${NOT_SET_ANYWHERE}"\n`, /demo\.yaml:6: inject\.headers\.X-Key: environment variable NOT_SET_ANYWHERE is not set/],
    ['an unknown template name', file, `hosts: ["127.0.0.1:${up.port}"]\nauth: { type: bearer }\ninject:\n  headers:\n    X-Key: "{{nope}}"\n`, /\{\{nope\}\} is not something this scheme supplies/],
    ['a bad host', file, 'hosts: ["https://api.example.com/x"]\nauth: { type: bearer }\n', /demo\.yaml:1: hosts\[0\]: .* is not a host name/],
    ['a scheme listed twice', file, `hosts: ["127.0.0.1:${up.port}"]\nauth: [{ type: bearer }, { type: bearer }]\n`, /the type "bearer" is listed twice/],
    ['a bad regular expression', file, `hosts: ["127.0.0.1:${up.port}"]\nauth:\n  type: bearer\n  fields: [{ name: token, pattern: "([" }]\n`, /demo\.yaml:4: .*not a valid regular expression/],
    ['a bad enum in credproxy.yaml', settingsFile, 'store: memory\npassthrough: sometimes\n', /credproxy\.yaml:2: passthrough: "sometimes" is not allowed/],
    ['true where a number goes', settingsFile, 'store: memory\nlimits: { replay_body_bytes: true }\n', /credproxy\.yaml:2: limits\.replay_body_bytes: expected a whole number/],
    ['a YAML syntax error', settingsFile, 'store: memory\nlimits: { replay_body_bytes: 1\n', /credproxy\.yaml:\d+: /],
  ];
  const good = { [file]: demo(up.port), [settingsFile]: 'store: memory\n' };
  for (const [why, path, text, problem] of cases) {
    writeFileSync(path, text);
    const outcome = proxy.reload();
    t.notOk(outcome.ok, why);
    t.match(outcome.problems?.join('\n'), problem, why);
    t.equal(proxy.runtime.current, before, `${why}: the running config stays`);
    writeFileSync(path, good[path]!);
  }
  t.ok(proxy.reload().ok, 'the good files load again');
});

t.test('a reload that drops clients on a non-loopback listen address is refused: no open proxy by edit', async (t) => {
  const key = 'reload-client-key-0123456789';
  const withClients = `store: memory\n${LOOPBACK_EGRESS}clients: [{ name: a, key: "${key}" }]\n`;
  const dir = configDir(withClients);
  const proxy = await startProxy(dir, { host: '0.0.0.0' });
  t.teardown(() => proxy.close());
  const ask = () => viaProxy(proxy.port, 'http://127.0.0.1:9/x');
  t.equal((await ask()).status, 407, 'a key is needed');

  writeFileSync(join(dir, 'credproxy.yaml'), `store: memory\n${LOOPBACK_EGRESS}`);
  const outcome = proxy.reload();
  t.equal(outcome.ok, false);
  t.match(outcome.problems?.join('\n'), /0\.0\.0\.0, which is not a loopback address, without client authentication/);
  t.equal((await ask()).status, 407, 'the running config, with its clients, stays live');

  writeFileSync(join(dir, 'credproxy.yaml'), `store: memory\n${LOOPBACK_EGRESS}allow_unauthenticated: true\n`);
  const again = proxy.reload();
  t.equal(again.ok, false, 'allow_unauthenticated is read at start: setting it in a reload does not open the proxy either');
  t.same(again.restartNeeded ?? [], []);
  t.equal((await ask()).status, 407);
});
