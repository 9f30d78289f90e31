import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { ProxyAgent, request } from 'undici';
import { makeTestCa } from '../support/certs.js';
import { configDir, setup as plainSetup, startProxy, startUpstream, type TestProxy } from '../support/servers.js';
import { connectVia, rawExchange, tlsOver } from '../support/tunnel.js';

// One internal CA for the test upstreams, as an operator would name in tls.upstream_ca.
const upstreamCa = makeTestCa();
const upstreamCert = upstreamCa.issue(['127.0.0.1', 'localhost']);

async function setup(t: Test, opts: { tls?: string; top?: string; upstreamCa?: boolean } = {}) {
  const up = await startUpstream(undefined, { tls: upstreamCert });
  const other = await startUpstream(undefined, { tls: upstreamCert });
  const dir = configDir('', {
    demo: `hosts: ["127.0.0.1:${up.port}"]\nupstream: https\nauth: { type: bearer }\n`,
  });
  const caFile = upstreamCa.write(dir);
  const upstreamLine = opts.upstreamCa === false ? '' : `  upstream_ca: ${caFile}\n`;
  // Loopback upstreams stand in for the internet: allow them for passthrough explicitly.
  writeFileSync(
    join(dir, 'credproxy.yaml'),
    `store: memory\negress: { allow_private: ["127.0.0.0/8"] }\n${opts.top ?? ''}tls:\n  ca_dir: ${join(dir, 'ca')}\n${upstreamLine}${opts.tls ?? ''}`,
  );
  const proxy = await startProxy(dir);
  t.teardown(async () => {
    await proxy.close();
    await up.close();
    await other.close();
  });
  const credproxyCa = proxy.runtime.tls.ca?.certPem ?? '';
  return { up, other, dir, proxy, credproxyCa };
}

function agent(proxy: TestProxy, ca: string | undefined, user?: string): ProxyAgent {
  const uri = user ? proxy.url.replace('http://', `http://${user}@`) : proxy.url;
  return new ProxyAgent({ uri, ...(ca ? { requestTls: { ca } } : {}) });
}

t.test('https via CONNECT: credential injected, entity header and proxy credentials stripped, one leaf per host', async (t) => {
  const { up, proxy, credproxyCa } = await setup(t);
  t.equal((await proxy.connect('alice', 'demo', { credentials: { token: 'alice-secret-1' } })).status, 200);
  for (let i = 0; i < 2; i++) {
    // A new agent each time: a new tunnel and TLS handshake, yet no new certificate.
    const dispatcher = agent(proxy, credproxyCa);
    const r = await request(`https://127.0.0.1:${up.port}/v1/me?x=${i}`, { dispatcher, headers: { 'x-entity-id': 'alice', authorization: 'Bearer spoofed' } });
    t.equal(r.statusCode, 200);
    await r.body.text();
    await dispatcher.close();
  }
  t.equal(up.seen.length, 2);
  const seen = up.seen.at(-1)!;
  t.equal(seen.url, '/v1/me?x=1');
  t.equal(seen.headers.authorization, 'Bearer alice-secret-1');
  t.equal(seen.rawHeaders.filter((h) => h.toLowerCase() === 'authorization').length, 1);
  t.notOk('x-entity-id' in seen.headers);
  t.notOk('proxy-authorization' in seen.headers);
  t.equal(seen.headers.host, `127.0.0.1:${up.port}`);
  t.equal(proxy.runtime.tls.leaves!.issued, 1, 'the leaf certificate is made once per host, not per connection');
  t.notMatch(proxy.logs.text, /alice-secret-1/);
  t.match(proxy.logs.text, /"entity":"alice","integration":"demo"/);
});

t.test('the entity comes from the proxy user name of the CONNECT when no header names it', async (t) => {
  const { up, proxy, credproxyCa } = await setup(t);
  await proxy.connect('bob', 'demo', { credentials: { token: 'bob-secret' } });
  const dispatcher = agent(proxy, credproxyCa, 'bob:client-key');
  t.teardown(() => dispatcher.close());
  const r = await request(`https://127.0.0.1:${up.port}/`, { dispatcher });
  t.equal(r.statusCode, 200);
  await r.body.text();
  t.equal(up.seen.at(-1)!.headers.authorization, 'Bearer bob-secret');
  t.notOk('proxy-authorization' in up.seen.at(-1)!.headers);

  // An inner X-Entity-Id wins over the proxy user (and still never travels upstream).
  await proxy.connect('carol', 'demo', { credentials: { token: 'carol-secret' } });
  const r2 = await request(`https://127.0.0.1:${up.port}/`, { dispatcher, headers: { 'x-entity-id': 'carol' } });
  await r2.body.text();
  t.equal(up.seen.at(-1)!.headers.authorization, 'Bearer carol-secret');
});

t.test('errors inside an intercepted tunnel are the documented JSON answers', async (t) => {
  const { up, proxy, credproxyCa } = await setup(t);
  const dispatcher = agent(proxy, credproxyCa);
  t.teardown(() => dispatcher.close());
  const r = await request(`https://127.0.0.1:${up.port}/`, { dispatcher });
  t.equal(r.statusCode, 400);
  t.equal(r.headers['x-credproxy-error'], 'entity_required');
  t.equal(((await r.body.json()) as { error: { code: string } }).error.code, 'entity_required');
  const r2 = await request(`https://127.0.0.1:${up.port}/`, { dispatcher, headers: { 'x-entity-id': 'nobody' } });
  t.equal(r2.statusCode, 424);
  t.equal(r2.headers['x-credproxy-error'], 'connection_missing');
  await r2.body.text();
  t.equal(up.seen.length, 0, 'nothing reached the upstream');
});

t.test('a client that does not trust credproxy\'s CA fails the handshake: no silent downgrade', async (t) => {
  const { up, proxy } = await setup(t);
  await proxy.connect('alice', 'demo', { credentials: { token: 'alice-secret-2' } });
  const dispatcher = agent(proxy, undefined); // node's default trust store only
  t.teardown(() => dispatcher.close());
  const err = await request(`https://127.0.0.1:${up.port}/`, { dispatcher, headers: { 'x-entity-id': 'alice' } }).then(
    () => undefined,
    (e: Error & { code?: string }) => e,
  );
  t.ok(err, 'the request failed');
  t.equal(err?.code, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'a certificate error, not some other failure');
  t.equal(up.seen.length, 0);
});

t.test('credproxy verifies the upstream: without tls.upstream_ca the internal upstream is refused', async (t) => {
  const { up, proxy, credproxyCa } = await setup(t, { upstreamCa: false });
  await proxy.connect('alice', 'demo', { credentials: { token: 'alice-secret-3' } });
  const dispatcher = agent(proxy, credproxyCa);
  t.teardown(() => dispatcher.close());
  const r = await request(`https://127.0.0.1:${up.port}/`, { dispatcher, headers: { 'x-entity-id': 'alice' } });
  t.equal(r.statusCode, 502);
  t.equal(r.headers['x-credproxy-error'], 'upstream_error');
  t.match(await r.body.text(), /SELF_SIGNED|UNABLE_TO|CERT/);
  t.equal(up.seen.length, 0, 'the credential never went out over an unverified connection');
});

t.test('a host no integration owns is tunnelled untouched: the client sees the upstream\'s own certificate', async (t) => {
  const { other, proxy, credproxyCa } = await setup(t);
  const tunnel = await connectVia(proxy.port, `127.0.0.1:${other.port}`);
  t.equal(tunnel.status, 200);
  const secure = await tlsOver(tunnel.socket, { ca: upstreamCa.certPem });
  t.equal(secure.getPeerX509Certificate()!.fingerprint256, new X509Certificate(upstreamCert.cert).fingerprint256);
  const r = await rawExchange(secure, `GET /plain HTTP/1.1\r\nHost: 127.0.0.1:${other.port}\r\nX-Entity-Id: alice\r\nConnection: close\r\n\r\n`);
  t.equal(r.status, 200);
  t.equal(other.seen.at(-1)!.headers['x-entity-id'], 'alice', 'bytes pass as they are: credproxy does not even see the headers');
  t.equal(proxy.runtime.tls.leaves!.issued, 0);

  // And a client that trusts only credproxy's CA cannot be fooled into accepting it.
  const t2 = await connectVia(proxy.port, `127.0.0.1:${other.port}`);
  await t.rejects(tlsOver(t2.socket, { ca: credproxyCa }));
});

t.test('with tls.intercept off, integration hosts are tunnelled untouched too', async (t) => {
  const { up, proxy } = await setup(t, { tls: '  intercept: false\n' });
  t.equal(proxy.runtime.tls.leaves, undefined);
  t.notOk(existsSync(join(proxy.runtime.current.config.dir, 'ca')), 'no CA is created when nothing is intercepted');
  const tunnel = await connectVia(proxy.port, `127.0.0.1:${up.port}`);
  t.equal(tunnel.status, 200);
  const secure = await tlsOver(tunnel.socket, { ca: upstreamCa.certPem });
  t.equal(secure.getPeerX509Certificate()!.fingerprint256, new X509Certificate(upstreamCert.cert).fingerprint256);
  secure.destroy();
});

t.test('passthrough: deny answers CONNECT to other hosts with 403 host_denied; integration hosts still work', async (t) => {
  const { up, other, proxy, credproxyCa } = await setup(t, { top: 'passthrough: deny\n' });
  const denied = await connectVia(proxy.port, `127.0.0.1:${other.port}`);
  t.equal(denied.status, 403);
  t.equal(denied.headers['x-credproxy-error'], 'host_denied');
  t.equal((JSON.parse(denied.body.toString()) as { error: { code: string } }).error.code, 'host_denied');
  await proxy.connect('alice', 'demo', { credentials: { token: 'alice-secret-4' } });
  const dispatcher = agent(proxy, credproxyCa);
  t.teardown(() => dispatcher.close());
  const r = await request(`https://127.0.0.1:${up.port}/`, { dispatcher, headers: { 'x-entity-id': 'alice' } });
  t.equal(r.statusCode, 200);
  await r.body.text();
  t.equal(up.seen.at(-1)!.headers.authorization, 'Bearer alice-secret-4');
});

t.test('plain HTTP inside a tunnel: undici ProxyAgent with its defaults against an http:// integration host', async (t) => {
  const { up, proxy } = await plainSetup(t, {
    settings: 'store: memory\n',
    caInDir: true,
    integrations: (up) => ({ plain: `hosts: ["127.0.0.1:${up.port}"]\nupstream: http\nauth: { type: bearer }\n` }),
  });
  await proxy.connect('alice', 'plain', { credentials: { token: 'plain-secret' } });
  const dispatcher = new ProxyAgent(proxy.url); // tunnels http:// too (CONNECT), as EnvHttpProxyAgent does
  t.teardown(() => dispatcher.close());
  for (let i = 0; i < 2; i++) {
    const r = await request(`http://127.0.0.1:${up.port}/items?n=${i}`, { dispatcher, method: 'POST', body: `{"n":${i}}`, headers: { 'x-entity-id': 'alice', 'content-type': 'application/json' } });
    t.equal(r.statusCode, 200);
    await r.body.text();
  }
  const seen = up.seen.at(-1)!;
  t.equal(seen.url, '/items?n=1');
  t.equal(seen.body.toString(), '{"n":1}');
  t.equal(seen.headers.authorization, 'Bearer plain-secret');
  t.notOk('x-entity-id' in seen.headers);
  t.equal(proxy.runtime.tls.leaves!.issued, 0, 'no certificate for a plain-HTTP tunnel');
  t.match(proxy.logs.text, /"integration":"plain","method":"POST"/);
});

t.test('inside a tunnel the CONNECT line decides the target: an absolute-form request for another host is refused', async (t) => {
  const { up, other, proxy, credproxyCa } = await setup(t);
  await proxy.connect('alice', 'demo', { credentials: { token: 'alice-secret-5' } });
  const tunnel = await connectVia(proxy.port, `127.0.0.1:${up.port}`);
  const secure = await tlsOver(tunnel.socket, { ca: credproxyCa });
  const r = await rawExchange(secure, `GET https://127.0.0.1:${other.port}/steal HTTP/1.1\r\nHost: 127.0.0.1:${other.port}\r\nX-Entity-Id: alice\r\nConnection: close\r\n\r\n`);
  t.equal(r.status, 400);
  t.equal(r.headers['x-credproxy-error'], 'bad_request');
  t.equal(other.seen.length + up.seen.length, 0);

  // The same host in absolute form is fine, and a lying Host header changes nothing.
  const t2 = await connectVia(proxy.port, `127.0.0.1:${up.port}`);
  const s2 = await tlsOver(t2.socket, { ca: credproxyCa });
  const ok = await rawExchange(s2, `GET https://127.0.0.1:${up.port}/mine HTTP/1.1\r\nHost: 127.0.0.1:${other.port}\r\nX-Entity-Id: alice\r\nConnection: close\r\n\r\n`);
  t.equal(ok.status, 200);
  t.equal(up.seen.at(-1)!.headers.host, `127.0.0.1:${up.port}`);
  t.equal(up.seen.at(-1)!.url, '/mine');
});

t.test('the leaf presented names the CONNECT host and chains to credproxy\'s CA', async (t) => {
  const { up, proxy, credproxyCa } = await setup(t);
  const tunnel = await connectVia(proxy.port, `127.0.0.1:${up.port}`);
  // SNI that names another host changes nothing: the CONNECT line decides.
  const s2 = await tlsOver(tunnel.socket, { ca: credproxyCa, servername: 'api.other.example' });
  const leaf = s2.getPeerX509Certificate()!;
  t.equal(leaf.subjectAltName, 'IP Address:127.0.0.1');
  t.ok(leaf.checkIssued(new X509Certificate(credproxyCa)));
  t.equal(s2.alpnProtocol, 'http/1.1');
  s2.destroy();
});

t.test('the docs/https.md recipe: an unmodified Node client with NODE_EXTRA_CA_CERTS, HTTPS_PROXY and undici EnvHttpProxyAgent', async (t) => {
  const { up, proxy } = await setup(t);
  await proxy.connect('alice', 'demo', { credentials: { token: 'env-secret' } });
  const script = `
    import { EnvHttpProxyAgent, request } from 'undici';
    const r = await request(process.argv[1], { dispatcher: new EnvHttpProxyAgent() });
    process.stdout.write(String(r.statusCode));
    await r.body.text();`;
  const { stdout, stderr, code } = await new Promise<{ stdout: string; stderr: string; code: number | null }>((resolve) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, `https://127.0.0.1:${up.port}/env`], {
      env: { PATH: process.env.PATH, HTTPS_PROXY: proxy.url.replace('http://', 'http://alice:client-key@'), NODE_EXTRA_CA_CERTS: proxy.runtime.tls.ca!.certPath },
      cwd: process.cwd(),
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.once('close', (c) => resolve({ stdout: out, stderr: err, code: c }));
  });
  t.equal(code, 0, stderr);
  t.equal(stdout, '200');
  t.equal(up.seen.at(-1)!.url, '/env');
  t.equal(up.seen.at(-1)!.headers.authorization, 'Bearer env-secret');
});

t.test('IPv6: CONNECT [::1]:port is intercepted with an IP certificate for ::1', async (t) => {
  const cert = upstreamCa.issue(['::1']);
  const seen: string[] = [];
  const v6 = https.createServer(cert, (req, res) => {
    seen.push(`${req.headers.authorization ?? '-'} ${req.url}`);
    res.end('v6');
  });
  await new Promise<void>((r) => v6.listen(0, '::1', r));
  const port = (v6.address() as AddressInfo).port;
  const dir = configDir('', { v6: `hosts: ["[::1]:${port}"]\nauth: { type: bearer }\n` });
  writeFileSync(join(dir, 'credproxy.yaml'), `store: memory\negress: { allow_private: ["::1/128"] }\ntls: { ca_dir: ${join(dir, 'ca')}, upstream_ca: ${upstreamCa.write(dir)} }\n`);
  const proxy = await startProxy(dir);
  t.teardown(async () => {
    await proxy.close();
    v6.closeAllConnections();
    await new Promise<void>((r) => v6.close(() => r()));
  });
  await proxy.connect('alice', 'v6', { credentials: { token: 'v6-secret' } });
  const tunnel = await connectVia(proxy.port, `[::1]:${port}`);
  t.equal(tunnel.status, 200);
  const secure = await tlsOver(tunnel.socket, { ca: proxy.runtime.tls.ca!.certPem, host: '::1' });
  t.equal(secure.getPeerX509Certificate()!.subjectAltName, 'IP Address:0:0:0:0:0:0:0:1');
  const r = await rawExchange(secure, `GET /six HTTP/1.1\r\nHost: [::1]:${port}\r\nX-Entity-Id: alice\r\nConnection: close\r\n\r\n`);
  t.equal(r.status, 200);
  t.equal(r.body.toString(), 'v6');
  t.same(seen, ['Bearer v6-secret /six']);
});
