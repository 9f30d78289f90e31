import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { rawRequest } from '../support/raw.js';
import { securityFixture, type Fixture } from '../support/security.js';
import { connectVia, rawExchange } from '../support/tunnel.js';
import { handshakeKey } from '../support/websocket.js';

/**
 * Issue 15 #1: a `Connection: Upgrade` request used to be dialled by upgrade.ts itself, past
 * the egress policy, so a server on a denied address that ignores Upgrade answered normally
 * and its body came back. Every spelling the plain path refuses (test/security/targets.test.ts)
 * must be refused on the upgrade path too: in absolute form, inside a terminated tunnel, with
 * and without an entity token. Only spellings that reach loopback are tried, so a regression
 * shows up as the `internal` server answering, and no packet leaves the machine.
 */
const basic = (s: string) => `Basic ${Buffer.from(s).toString('base64')}`;

function spellings(p: number): Array<[name: string, host: string]> {
  return [
    ['localhost (resolves to loopback)', `localhost:${p}`],
    ['dotted loopback', `127.0.0.1:${p}`],
    ['hex short form 0x7f.1', `0x7f.1:${p}`],
    ['decimal 2130706433', `2130706433:${p}`],
    ['octal 017700000001', `017700000001:${p}`],
    ['short form 127.1', `127.1:${p}`],
    ['IPv4-mapped [::ffff:127.0.0.1]', `[::ffff:127.0.0.1]:${p}`],
    ['IPv4-mapped hex [::ffff:7f00:1]', `[::ffff:7f00:1]:${p}`],
    ['IPv4-compatible [::127.0.0.1]', `[::127.0.0.1]:${p}`],
    ['IPv6 loopback [::1]', `[::1]:${p}`],
    ['IPv6 loopback, long form', `[0:0:0:0:0:0:0:1]:${p}`],
    ['unspecified 0.0.0.0', `0.0.0.0:${p}`],
    ['unspecified 0', `0:${p}`],
    ['unspecified [::]', `[::]:${p}`],
    ['NAT64 form of loopback', `[64:ff9b::7f00:1]:${p}`],
    ['6to4 form of loopback', `[2002:7f00:1::]:${p}`],
    ['trailing dot localhost.', `localhost.:${p}`],
  ];
}

function upgradeRequest(target: string, host: string, extra = ''): string {
  const { key } = handshakeKey();
  return (
    `GET ${target} HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
    `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\nX-Entity-Id: alice\r\n${extra}\r\n`
  );
}

async function fixture(t: Test): Promise<Fixture & { token: string }> {
  const ca = mkdtempSync(join(tmpdir(), 'credproxy-upgrade-ca-'));
  const fx = await securityFixture(t, `tls: { ca_dir: ${ca} }\n`);
  const r = await fx.proxy.admin('POST', '/api/entities/alice/tokens', {});
  if (r.status !== 200) throw new Error(`token: ${r.status}`);
  const { token } = (await r.json()) as { token: string };
  return { ...fx, token };
}

function refused(t: Test, fx: Fixture, before: number, r: { status: number; headers: Record<string, string>; body: string | Buffer }): void {
  t.equal(r.status, 403, 'status 403');
  t.equal(r.headers['x-credproxy-error'], 'host_denied', 'X-Credproxy-Error: host_denied');
  t.notMatch(r.body.toString(), /"url"|"method"/, 'no upstream body came back');
  t.equal(fx.seenCount(), before, 'nothing reached an upstream');
}

t.test('an upgrade in absolute form to a denied address is 403 host_denied, in every spelling', async (t) => {
  const fx = await fixture(t);
  for (const [name, host] of spellings(fx.internal.port)) {
    for (const scheme of ['ws', 'http', 'wss', 'https']) {
      for (const who of ['no token', 'entity token']) {
        await t.test(`${name}, ${scheme}://, ${who}`, async (t) => {
          const before = fx.seenCount();
          const auth = who === 'entity token' ? `Proxy-Authorization: ${basic(`x:${fx.token}`)}\r\n` : '';
          const r = await rawRequest(fx.proxy.port, upgradeRequest(`${scheme}://${host}/latest/meta-data/`, host, auth));
          refused(t, fx, before, r);
        });
      }
    }
  }
});

t.test('an upgrade inside a terminated tunnel to a denied address is 403 host_denied, in every spelling', async (t) => {
  const fx = await fixture(t);
  for (const [name, host] of spellings(fx.internal.port)) {
    await t.test(`${name}, entity token as the proxy password (tunnel terminated)`, async (t) => {
      const before = fx.seenCount();
      const tunnel = await connectVia(fx.proxy.port, host, { 'proxy-authorization': basic(`x:${fx.token}`) });
      t.equal(tunnel.status, 200, 'a token client gets a terminated tunnel');
      const r = await rawExchange(tunnel.socket, upgradeRequest('/latest/meta-data/', host));
      refused(t, fx, before, r);
    });
    await t.test(`${name}, no token (opaque tunnel)`, async (t) => {
      const before = fx.seenCount();
      const tunnel = await connectVia(fx.proxy.port, host);
      t.equal(tunnel.status, 403, 'the tunnel itself is refused');
      t.equal(tunnel.headers['x-credproxy-error'], 'host_denied');
      t.equal(fx.seenCount(), before, 'nothing reached an upstream');
    });
  }
});

t.test('an upgrade to an owned host still reaches it with the credential', async (t) => {
  const fx = await fixture(t);
  const host = `127.0.0.1:${fx.owned.port}`;
  const r = await rawRequest(fx.proxy.port, upgradeRequest(`ws://${host}/socket`, host));
  // The test upstream ignores Upgrade and answers 200: what matters is where it went.
  t.equal(r.status, 200);
  t.equal(fx.owned.seen.at(-1)?.url, '/socket');
  t.equal(fx.owned.seen.at(-1)?.headers.authorization, 'Bearer sec-token-7f3a9c-do-not-leak');
  t.equal(fx.internal.seen.length, 0);
});

t.test('other upgrade tokens (h2c, a non-GET websocket) take the plain path and its egress check', async (t) => {
  const fx = await fixture(t);
  const host = `2130706433:${fx.internal.port}`;
  const cases: Array<[string, string]> = [
    ['Upgrade: h2c', `GET http://${host}/ HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n`],
    ['POST with Upgrade: websocket', `POST http://${host}/ HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 0\r\n\r\n`],
    ['Upgrade: websocket, h2c', upgradeRequest(`http://${host}/`, host).replace('Upgrade: websocket', 'Upgrade: h2c, websocket')],
  ];
  for (const [name, text] of cases) {
    await t.test(name, async (t) => {
      const before = fx.seenCount();
      refused(t, fx, before, await rawRequest(fx.proxy.port, text));
    });
  }
});
