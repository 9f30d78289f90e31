import t from 'tap';
import { rawRequest } from '../support/raw.js';
import { assertRefused, securityFixture, TOKEN } from '../support/security.js';
import { viaProxy } from '../support/servers.js';

/**
 * Request targets crafted to look like one host and be another. The target comes from the
 * request line only (WHATWG URL parsing), so every spelling of an address lands on the same
 * bytes; the credential goes only where the integration's exact host is, and passthrough
 * never reaches loopback, private or link-local addresses unless egress.allow_private says so.
 */
t.test('targets that try to reach a private address through passthrough get 403 host_denied', async (t) => {
  const fx = await securityFixture(t);
  const p = fx.internal.port;
  const denied: Array<[name: string, target: string]> = [
    ['loopback by name (localhost resolves to 127.0.0.1)', `http://localhost:${p}/`],
    ['dotted loopback', `http://127.0.0.1:${p}/`],
    ['hex short form 0x7f.1', `http://0x7f.1:${p}/`],
    ['decimal form 2130706433', `http://2130706433:${p}/`],
    ['octal form 017700000001', `http://017700000001:${p}/`],
    ['short form 127.1', `http://127.1:${p}/`],
    ['IPv4-mapped IPv6 [::ffff:127.0.0.1]', `http://[::ffff:127.0.0.1]:${p}/`],
    ['IPv4-compatible IPv6 [::127.0.0.1]', `http://[::127.0.0.1]:${p}/`],
    ['IPv6 loopback [::1]', `http://[::1]:${p}/`],
    ['IPv6 loopback, long form', `http://[0:0:0:0:0:0:0:1]:${p}/`],
    ['unspecified 0.0.0.0 (reaches the local host on Linux)', `http://0.0.0.0:${p}/`],
    ['unspecified 0 (decimal)', `http://0:${p}/`],
    ['unspecified IPv6 [::]', `http://[::]:${p}/`],
    ['cloud metadata 169.254.169.254', 'http://169.254.169.254/latest/meta-data/'],
    ['cloud metadata in octal 0251.0376.0251.0376', 'http://0251.0376.0251.0376/latest/meta-data/'],
    ['RFC 1918 10/8', 'http://10.0.0.1/'],
    ['RFC 1918 192.168/16', 'http://192.168.1.1/'],
    ['CGNAT 100.64/10', 'http://100.64.0.1/'],
    ['IPv6 unique-local fd00::/8', 'http://[fd00::1]/'],
    ['IPv6 link-local fe80::/10', 'http://[fe80::1]/'],
    ['NAT64 form of loopback [64:ff9b::127.0.0.1]', `http://[64:ff9b::7f00:1]:${p}/`],
    ['6to4 form of loopback [2002:7f00:1::]', `http://[2002:7f00:1::]:${p}/`],
    ['multicast 224.0.0.1', 'http://224.0.0.1/'],
    ['broadcast 255.255.255.255', 'http://255.255.255.255/'],
    ['https target to loopback', `https://127.0.0.1:${p}/`],
  ];
  for (const [name, target] of denied) {
    await t.test(name, async (t) => {
      const before = fx.seenCount();
      const r = await viaProxy(fx.proxy.port, target, { headers: { 'X-Entity-Id': 'alice' } });
      assertRefused(t, fx, before, r, 403, 'host_denied');
    });
  }
});

t.test('egress.allow_private opens exactly the listed range', async (t) => {
  const fx = await securityFixture(t, 'egress: { allow_private: ["127.0.0.0/8"] }\n');
  const r = await viaProxy(fx.proxy.port, `http://0x7f.1:${fx.internal.port}/ok`, { headers: { 'X-Entity-Id': 'alice' } });
  t.equal(r.status, 200, 'loopback, now listed, is reached');
  t.equal(fx.internal.seen.at(-1)?.url, '/ok');
  t.notOk(fx.internal.seen.at(-1)?.headers.authorization, 'passthrough carries no credential');
  const before = fx.seenCount();
  const m = await viaProxy(fx.proxy.port, 'http://169.254.169.254/', { headers: { 'X-Entity-Id': 'alice' } });
  assertRefused(t, fx, before, m, 403, 'host_denied');
  const v6 = await viaProxy(fx.proxy.port, `http://[::1]:${fx.internal.port}/`, { headers: { 'X-Entity-Id': 'alice' } });
  assertRefused(t, fx, before, v6, 403, 'host_denied');
});

t.test('passthrough: deny refuses every host no integration owns', async (t) => {
  const fx = await securityFixture(t, 'passthrough: deny\negress: { allow_private: ["127.0.0.0/8"] }\n');
  const before = fx.seenCount();
  const r = await viaProxy(fx.proxy.port, `http://127.0.0.1:${fx.internal.port}/`, {});
  assertRefused(t, fx, before, r, 403, 'host_denied');
});

t.test('malformed or disguised targets are 400 bad_request', async (t) => {
  const fx = await securityFixture(t);
  const o = fx.owned.port;
  const bad: Array<[name: string, target: string]> = [
    ['userinfo before the owned host', `http://alice@127.0.0.1:${o}/`],
    ['owned host as userinfo of another host', `http://127.0.0.1:${o}@example.invalid/`],
    ['user and password in the target', `http://u:p@localhost:${o}/`],
    ['empty userinfo', `http://@localhost:${o}/`],
    ['port out of range', `http://localhost:99999/`],
    ['IPv6 zone id', `http://[fe80::1%25eth0]/`],
    ['scheme that is not http(s)', `ftp://localhost:${o}/`],
    ['javascript: target', 'javascript:alert(1)'],
    ['forbidden host code point', `http://local<host:${o}/`],
  ];
  for (const [name, target] of bad) {
    await t.test(name, async (t) => {
      const before = fx.seenCount();
      const r = await rawRequest(fx.proxy.port, `GET ${target} HTTP/1.1\r\nHost: x\r\nX-Entity-Id: alice\r\nConnection: close\r\n\r\n`);
      assertRefused(t, fx, before, r, 400, 'bad_request');
    });
  }
});

t.test('spellings of the owned host reach the owner with its credential, and only it', async (t) => {
  const fx = await securityFixture(t);
  const o = fx.owned.port;
  const same: Array<[name: string, target: string, host: string]> = [
    ['upper-case host', `http://LOCALHOST:${o}/a`, `localhost:${o}`],
    ['trailing dot', `http://localhost.:${o}/a`, `localhost:${o}`],
    ['percent-encoded host name', `http://loc%61lhost:${o}/a`, `localhost:${o}`],
    ['leading zeros in the port', `http://localhost:00${o}/a`, `localhost:${o}`],
    ['decimal form of the owned IP', `http://2130706433:${o}/a`, `127.0.0.1:${o}`],
  ];
  for (const [name, target, host] of same) {
    await t.test(name, async (t) => {
      const r = await viaProxy(fx.proxy.port, target, { headers: { 'X-Entity-Id': 'alice' } });
      t.equal(r.status, 200);
      const seen = fx.owned.seen.at(-1)!;
      t.equal(seen.headers.authorization, `Bearer ${TOKEN}`);
      t.equal(seen.headers.host, host, 'the Host header is the normalised target');
    });
  }
  await t.test('IDN look-alike (Cyrillic о) is another host: no credential, nothing reaches the owner', async (t) => {
    const before = fx.seenCount();
    // As a client sends it (punycode): passthrough tries that name, which does not resolve.
    const r = await viaProxy(fx.proxy.port, `http://xn--lcalhost-nbh:${o}/a`, { headers: { 'X-Entity-Id': 'alice' } });
    assertRefused(t, fx, before, r, 502, 'upstream_error');
    // As raw UTF-8 on the request line: node reads the target as latin1, so the host is
    // mojibake with forbidden code points and the target is refused.
    const raw = await rawRequest(fx.proxy.port, `GET http://lоcalhost:${o}/a HTTP/1.1\r\nHost: x\r\nX-Entity-Id: alice\r\n\r\n`);
    assertRefused(t, fx, before, raw, 400, 'bad_request');
  });
  await t.test('a different Host header never redirects the credential', async (t) => {
    const r = await viaProxy(fx.proxy.port, `${fx.owned.origin}/h`, { headers: { 'X-Entity-Id': 'alice', Host: 'evil.example' } });
    t.equal(r.status, 200);
    t.equal(fx.owned.seen.at(-1)!.headers.host, `127.0.0.1:${o}`, 'Host rewritten from the request line');
  });
  await t.test('an owned Host header on a passthrough target gets no credential', async (t) => {
    const before = fx.seenCount();
    const r = await viaProxy(fx.proxy.port, `http://127.0.0.1:${fx.internal.port}/`, { headers: { 'X-Entity-Id': 'alice', Host: `127.0.0.1:${o}` } });
    assertRefused(t, fx, before, r, 403, 'host_denied');
  });
  await t.test('Host given twice is 400', async (t) => {
    const before = fx.seenCount();
    const r = await rawRequest(fx.proxy.port, `GET ${fx.owned.origin}/ HTTP/1.1\r\nHost: a\r\nHost: b\r\nX-Entity-Id: alice\r\n\r\n`);
    assertRefused(t, fx, before, r, 400, 'bad_request');
  });
});
