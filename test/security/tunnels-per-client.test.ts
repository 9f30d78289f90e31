import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { loadConfig } from '../support/config.js';
import { TunnelGate } from '../../src/limits.js';
import { pollUntil } from '../support/poll.js';
import { configDir, LOOPBACK_EGRESS, startProxy, startUpstream, type TestProxy } from '../support/servers.js';
import { connectVia, type ConnectResult } from '../support/tunnel.js';

/**
 * Issue 15, "tunnels per client": `limits.max_tunnels` is global, so one client could hold
 * every slot and lock the others out. `limits.max_tunnels_per_client` (default half of
 * max_tunnels, at least 1) caps each client's share: per client key, per entity token, and
 * per address when no client authentication is configured. Over it: 429 rate_limited with
 * Retry-After, as the global limit answers.
 */
const KEY_A = 'tunnel-client-a-0123456789';
const KEY_B = 'tunnel-client-b-0123456789';
const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

async function proxyWith(t: Test, settings: string): Promise<{ proxy: TestProxy; target: string }> {
  const up = await startUpstream();
  t.teardown(() => up.close());
  const dir = configDir(`store: memory\n${LOOPBACK_EGRESS}${settings}`, {
    // The tunnels go to a passthrough host (a byte tunnel, closed as soon as the client goes).
    demo: 'hosts: ["127.0.0.1:1"]\nupstream: http\nauth: { type: bearer }\n',
  });
  const proxy = await startProxy(dir);
  t.teardown(() => proxy.close());
  return { proxy, target: `127.0.0.1:${up.port}` };
}

/** Opens a tunnel and keeps it open until the test ends. */
async function open(t: Test, proxy: TestProxy, target: string, auth?: string): Promise<ConnectResult> {
  const r = await connectVia(proxy.port, target, auth ? { 'proxy-authorization': auth } : {});
  t.teardown(() => r.socket.destroy());
  return r;
}

function limited(t: Test, r: ConnectResult, why: RegExp): void {
  t.equal(r.status, 429, 'status 429');
  t.equal(r.headers['x-credproxy-error'], 'rate_limited');
  t.equal(r.headers['retry-after'], '1');
  t.match(r.body.toString(), why);
}

t.test('one client key cannot take every tunnel', async (t) => {
  const clients = `clients:\n  - { name: a, key: "${KEY_A}" }\n  - { name: b, key: "${KEY_B}" }\n`;
  const { proxy, target } = await proxyWith(t, `${clients}limits: { max_tunnels: 4, max_tunnels_per_client: 2 }\n`);
  const a = basic('alice', KEY_A);
  const b = basic('bob', KEY_B);
  const a1 = await open(t, proxy, target, a);
  t.equal(a1.status, 200);
  t.equal((await open(t, proxy, target, a)).status, 200);
  limited(t, await open(t, proxy, target, a), /max_tunnels_per_client/);
  t.equal((await open(t, proxy, target, b)).status, 200, 'another client still gets its share');
  t.equal((await open(t, proxy, target, b)).status, 200);
  limited(t, await open(t, proxy, target, b), /max_tunnels_per_client/);
  // A closed tunnel gives its slot back to its client.
  const closed = new Promise((r) => a1.socket.once('close', r));
  a1.socket.destroy();
  await closed;
  // The proxy sees the close a moment later (its side ends once the upstream has ended too).
  t.ok(await pollUntil(async () => (await open(t, proxy, target, a)).status === 200, 3000), 'a freed slot is usable again');
});

t.test('the global limit still applies on top of the shares', async (t) => {
  const clients = `clients:\n  - { name: a, key: "${KEY_A}" }\n  - { name: b, key: "${KEY_B}" }\n`;
  const { proxy, target } = await proxyWith(t, `${clients}limits: { max_tunnels: 3, max_tunnels_per_client: 2 }\n`);
  t.equal((await open(t, proxy, target, basic('x', KEY_A))).status, 200);
  t.equal((await open(t, proxy, target, basic('x', KEY_A))).status, 200);
  t.equal((await open(t, proxy, target, basic('x', KEY_B))).status, 200);
  limited(t, await open(t, proxy, target, basic('x', KEY_B)), /more than 3 tunnels are open/);
});

t.test('each entity token has its own share', async (t) => {
  const ca = mkdtempSync(join(tmpdir(), 'credproxy-tunnels-ca-'));
  const { proxy, target } = await proxyWith(t, `tls: { ca_dir: ${ca} }\nlimits: { max_tunnels: 10, max_tunnels_per_client: 1 }\n`);
  const token = async (entity: string) => ((await (await proxy.admin('POST', `/api/entities/${entity}/tokens`, {})).json()) as { token: string }).token;
  const alice = basic('x', await token('alice'));
  const bob = basic('x', await token('bob'));
  t.equal((await open(t, proxy, target, alice)).status, 200);
  limited(t, await open(t, proxy, target, alice), /max_tunnels_per_client/);
  t.equal((await open(t, proxy, target, bob)).status, 200, "bob's token has its own share");
});

t.test('without client authentication the share is per address', async (t) => {
  const { proxy, target } = await proxyWith(t, 'limits: { max_tunnels: 10, max_tunnels_per_client: 2 }\n');
  t.equal((await open(t, proxy, target)).status, 200);
  t.equal((await open(t, proxy, target)).status, 200);
  limited(t, await open(t, proxy, target), /max_tunnels_per_client/);
});

t.test('the default share is half of max_tunnels, at least 1', async (t) => {
  const share = (limits: string) => loadConfig(configDir(`store: memory\n${limits}`), { env: {} }).settings.limits.max_tunnels_per_client;
  t.equal(share(''), 512);
  t.equal(share('limits: { max_tunnels: 5 }\n'), 2);
  t.equal(share('limits: { max_tunnels: 1 }\n'), 1);
  t.equal(share('limits: { max_tunnels: 8, max_tunnels_per_client: 8 }\n'), 8);
  t.throws(() => share('limits: { max_tunnels_per_client: 0 }\n'), 'below 1 is a config error');
});

t.test('TunnelGate counts per client and releases once', async (t) => {
  const gate = new TunnelGate(() => 3, () => 2);
  const a1 = gate.acquire('a');
  gate.acquire('a');
  t.throws(() => gate.acquire('a'), { code: 'rate_limited', headers: { 'retry-after': '1' } });
  gate.acquire('b');
  t.throws(() => gate.acquire('c'), { code: 'rate_limited' }, 'global limit');
  a1();
  a1();
  t.equal(gate.countOf('a'), 1, 'release is idempotent');
  t.equal(gate.count, 2);
  gate.acquire('a');
  t.equal(gate.countOf('a'), 2);
});
