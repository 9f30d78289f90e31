import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import t, { type Test } from 'tap';
import { ProxyAgent, request } from 'undici';
import { loadConfig } from '../support/config.js';
import { RoutingTable } from '../../src/proxy/match.js';
import { loadOrCreateCa } from '../../src/tls/ca.js';
import { NewLeafLimiter } from '../../src/tls/leaf-rate.js';
import { makeTestCa } from '../support/certs.js';
import { configDir, startProxy, startUpstream } from '../support/servers.js';
import { connectVia, tlsOver } from '../support/tunnel.js';

// Issue 15 item 5: a new intercepted name cost ~30 ms of synchronous RSA signing in JS.

const upstreamCa = makeTestCa();
const upstreamCert = upstreamCa.issue(['127.0.0.1', 'localhost']);
const KEY_A = 'client-a-key-0123456789';
const KEY_B = 'client-b-key-0123456789';
const basic = (user: string, key: string) => `Basic ${Buffer.from(`${user}:${key}`).toString('base64')}`;

/**
 * credproxy with a wildcard and a host-template integration (names under them are terminated
 * locally: the handshakes below never leave the machine) and an https upstream on loopback.
 * The CA folder is made first, as an existing install's would be.
 */
async function setup(t: Test, limits = '') {
  const up = await startUpstream(undefined, { tls: upstreamCert });
  const dir = configDir('', {
    demo: `hosts: ["127.0.0.1:${up.port}"]\nupstream: https\nauth: { type: bearer }\n`,
    wild: 'hosts: ["*.wild.test"]\nauth: { type: bearer }\n',
    tmpl: 'hosts: ["{{sub}}.tmpl.test"]\nparams: [{ name: sub }]\nauth: { type: bearer }\n',
  });
  const caDir = join(dir, 'ca');
  const existing = loadOrCreateCa(caDir);
  const fileHash = () => createHash('sha256').update(readFileSync(existing.certPath)).update(readFileSync(existing.keyPath)).digest('hex');
  const before = fileHash();
  writeFileSync(
    join(dir, 'credproxy.yaml'),
    `store: memory\nclients: [{ name: a, key: ${KEY_A}, entities: ["*"] }, { name: b, key: ${KEY_B}, entities: ["*"] }]\n${limits}tls:\n  ca_dir: ${caDir}\n  upstream_ca: ${upstreamCa.write(dir)}\n`,
  );
  const proxy = await startProxy(dir);
  t.teardown(async () => {
    await proxy.close();
    await up.close();
  });
  t.equal(proxy.runtime.tls.ca?.certPem, existing.certPem, 'the CA already on disk is the one used');
  t.equal(fileHash(), before, 'and its files are left as they were');
  return { up, proxy, ca: existing.certPem };
}

/** A CONNECT and a strict TLS handshake for `host` (trusting only credproxy's CA); the leaf the client was shown. */
async function handshake(port: number, host: string, ca: string, key = KEY_A): Promise<X509Certificate> {
  const c = await connectVia(port, `${host}:443`, { 'proxy-authorization': basic('x', key) });
  if (c.status !== 200) throw new Error(`CONNECT ${host}: ${c.status} ${c.body.toString()}`);
  const secure = await tlsOver(c.socket, { ca, host, servername: host });
  const leaf = secure.getPeerX509Certificate()!;
  secure.destroy();
  return leaf;
}

t.test('a leaf for a new name is ECDSA P-256, signed by the existing RSA CA, and a real client verifies it', async (t) => {
  const { up, proxy, ca } = await setup(t);
  t.equal((await proxy.connect('alice', 'demo', { credentials: { token: 'alice-secret-1' } })).status, 200);
  // A request through the terminated tunnel, as curl --proxy with --cacert would make it.
  const dispatcher = new ProxyAgent({ uri: proxy.url, token: basic('alice', KEY_A), requestTls: { ca } });
  const r = await request(`https://127.0.0.1:${up.port}/v1/me`, { dispatcher });
  t.equal(r.statusCode, 200);
  await r.body.text();
  await dispatcher.close();
  t.equal(up.seen.at(-1)?.headers.authorization, 'Bearer alice-secret-1');

  const leaf = await handshake(proxy.port, 'api.wild.test', ca);
  t.equal(leaf.publicKey.asymmetricKeyType, 'ec');
  t.equal(leaf.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  const caCert = new X509Certificate(ca);
  t.equal(caCert.publicKey.asymmetricKeyType, 'rsa', 'the CA key made by earlier versions (forge, RSA) signs it');
  t.ok(leaf.checkIssued(caCert));
  t.ok(leaf.verify(caCert.publicKey));
  t.equal(leaf.ca, false);
  t.match(leaf.keyUsage ?? [], ['1.3.6.1.5.5.7.3.1'], 'serverAuth');
});

t.test('names under one wildcard or template parent share one leaf; deeper names and other parents do not', async (t) => {
  const { proxy, ca } = await setup(t);
  const leaves = proxy.runtime.tls.leaves!;
  const a = await handshake(proxy.port, 'a.wild.test', ca);
  const b = await handshake(proxy.port, 'b.wild.test', ca);
  t.equal(a.subjectAltName, 'DNS:*.wild.test');
  t.equal(b.serialNumber, a.serialNumber, 'the second name reused the first certificate');
  t.equal(leaves.issued, 1, 'two names under *.wild.test: one issuance');

  // Concurrent handshakes for new names under one parent share the one signature in flight.
  const many = await Promise.all(['c', 'd', 'e', 'f'].map((l) => handshake(proxy.port, `${l}.tmpl.test`, ca)));
  t.same(new Set(many.map((c) => c.serialNumber)).size, 1);
  t.equal(many[0]!.subjectAltName, 'DNS:*.tmpl.test');
  t.equal(leaves.issued, 2, 'one more for *.tmpl.test');

  // A wildcard covers one label only (RFC 6125): a.b.wild.test gets a certificate of its own.
  const deep = await handshake(proxy.port, 'x.y.wild.test', ca);
  t.equal(deep.subjectAltName, 'DNS:x.y.wild.test');
  t.equal(leaves.issued, 3);
});

t.test('limits.new_leaves_per_second: a client over it gets 429 rate_limited before any handshake; known names and other clients do not', async (t) => {
  const { proxy, ca } = await setup(t, 'limits: { new_leaves_per_second: 2 }\n');
  const leaves = proxy.runtime.tls.leaves!;
  await handshake(proxy.port, 'n1.x.wild.test', ca);
  await handshake(proxy.port, 'n2.x.wild.test', ca);
  const refused = await connectVia(proxy.port, 'n3.x.wild.test:443', { 'proxy-authorization': basic('x', KEY_A) });
  t.equal(refused.status, 429);
  t.equal(refused.headers['x-credproxy-error'], 'rate_limited');
  t.equal(refused.headers['retry-after'], '1');
  t.match(JSON.parse(refused.body.toString()), { error: { code: 'rate_limited', message: /new host names per second/ } });
  t.equal(leaves.issued, 2, 'nothing was signed for the refused name');
  t.ok((await handshake(proxy.port, 'n1.x.wild.test', ca)).checkHost('n1.x.wild.test'), 'a name that has its certificate costs nothing');
  t.ok(await handshake(proxy.port, 'n3.x.wild.test', ca, KEY_B), 'another client has its own allowance');
  t.equal(leaves.issued, 3);
  // Deliberately let the one-second allowance refill: the limiter is about time passing.
  await new Promise((r) => setTimeout(r, 1100));
  t.ok(await handshake(proxy.port, 'n4.x.wild.test', ca), 'a second later the client may again');
});

t.test('NewLeafLimiter: a bucket of one second per client, refilled at the rate, read live; idle clients are forgotten', async (t) => {
  t.equal(loadConfig(configDir('store: memory\n'), { env: {} }).settings.limits.new_leaves_per_second, 20, 'documented default');
  let rate = 3;
  const l = new NewLeafLimiter(() => rate);
  const now = 1_000_000;
  t.same([l.take('a', now), l.take('a', now), l.take('a', now), l.take('a', now)], [true, true, true, false]);
  t.ok(l.take('b', now), 'per client');
  t.notOk(l.take('a', now + 100), 'a third of a token back after 100 ms: not enough');
  t.ok(l.take('a', now + 400), 'one token back after a third of a second');
  rate = 1;
  t.ok(l.take('c', now));
  t.notOk(l.take('c', now + 10), 'a lowered rate applies at once');
  for (let i = 0; i < 1100; i++) l.take(`x${i}`, now);
  t.ok(l.take('late', now + 5000), 'sweeping the idle clients');
  t.ok(l.take('a', now + 5000), 'a forgotten client starts with a full bucket');
});

t.test('signing 50 new names leaves the event loop free: it turns while the certificates are made', async (t) => {
  const { proxy, ca } = await setup(t, 'limits: { new_leaves_per_second: 1000 }\n');
  const leaves = proxy.runtime.tls.leaves!;
  await handshake(proxy.port, 'warm.x.wild.test', ca); // the leaf key and the CA's imported key are made once
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  const before = leaves.issued;
  // Straight at the cache, without sockets: between the calls and their results the loop must turn.
  let turns = 0;
  let done = false;
  const spin = () => {
    if (done) return;
    turns++;
    setImmediate(spin);
  };
  setImmediate(spin);
  const pending = Array.from({ length: 50 }, (_, i) => leaves.contextFor(`n${i}.y.wild.test`));
  t.equal(turns, 0, 'contextFor returns at once, without having signed anything');
  await Promise.all(pending);
  done = true;
  t.equal(leaves.issued - before, 50);
  t.ok(turns >= 5, `the event loop turned ${turns} times while 50 certificates were signed`);
  // And 50 real handshakes to new names all complete (timing belongs to the bench: bench/ handshakes).
  const certs = await Promise.all(Array.from({ length: 50 }, (_, i) => handshake(proxy.port, `h${i}.z.wild.test`, ca)));
  delay.disable();
  t.equal(new Set(certs.map((c) => c.serialNumber)).size, 50);
  t.comment(`event loop delay during 100 new names: max ${(delay.max / 1e6).toFixed(1)} ms, p99 ${(delay.percentile(99) / 1e6).toFixed(1)} ms`);
});

t.test('which certificate name a host gets: one label under a wildcard or a first-label template, never a one-label parent', async (t) => {
  const dir = configDir('store: memory\n', {
    wild: 'hosts: ["*.wild.test", "exact.other.test"]\nauth: { type: bearer }\n',
    tmpl: 'hosts: ["{{sub}}.tmpl.test", "api-{{region}}.multi.test", "{{a}}.{{b}}.two.test", "{{tld}}.test"]\nparams: [{ name: sub }, { name: region }, { name: a }, { name: b }, { name: tld }]\nauth: { type: bearer }\n',
  });
  const routes = new RoutingTable(loadConfig(dir, { env: {} }).integrations.values());
  t.equal(routes.leafName('a.wild.test'), '*.wild.test');
  t.equal(routes.leafName('a.b.wild.test'), 'a.b.wild.test', 'a wildcard certificate covers one label');
  t.equal(routes.leafName('wild.test'), 'wild.test');
  t.equal(routes.leafName('exact.other.test'), 'exact.other.test');
  t.equal(routes.leafName('acme.tmpl.test'), '*.tmpl.test');
  t.equal(routes.leafName('api-eu.multi.test'), '*.multi.test', 'params within the first label');
  t.equal(routes.leafName('x.y.two.test'), 'x.y.two.test', 'params in two labels: each name its own');
  t.equal(routes.leafName('com.test'), 'com.test', 'no *.test: a wildcard needs two labels after it');
  t.equal(routes.leafName('a.unowned.test'), 'a.unowned.test');
  t.equal(routes.leafName('10.0.0.1'), '10.0.0.1');
});
