import t from 'tap';
import { hasDotSegment, rawPathOf } from '../../src/proxy/dot-segments.js';
import { configDir, startProxy, startUpstream, viaProxy } from '../support/servers.js';
import { connectVia, rawExchange } from '../support/tunnel.js';

/** Every spelling of a dot segment tried: Tomcat/Jetty `;` params, percent-encodings, double encodings, backslashes. */
const DOTTED = [
  '/v1/..;/admin',
  '/v1/.;/admin',
  '/v1/..;jsessionid=x/admin',
  '/v1/.;x=1/admin',
  '/v1/..;',
  '/v1/%2e%2e/admin',
  '/v1/%2E%2E/admin',
  '/v1/%2e%2E/admin',
  '/v1/.%2e/admin',
  '/v1/%2e./admin',
  '/v1/.%2E/admin',
  '/v1/%2e/admin',
  '/v1/%2E/admin',
  '/v1/%2e%2e;/admin',
  '/v1/.%2e;x/admin',
  '/v1/%2e;/admin',
  '/v1/..%3b/admin',
  '/v1/..%3B/admin',
  '/v1/%2e%2e%3b/admin',
  '/v1/..%2fadmin',
  '/v1/..%2Fadmin',
  '/v1/..%5cadmin',
  '/v1/%2e%2e%5cadmin',
  '/v1/%252e%252e/admin',
  '/v1/%252e%252e%253b/admin',
  '/v1/%c0%ae%c0%ae/admin',
  '/v1/%ef%bc%8e%ef%bc%8e/admin',
  '/v1/./admin',
  '/v1/../admin',
  '/v1/..',
  '/v1/.',
  '/v1/%2e%2e',
];
/** Names with dots that are not dot segments, which must still pass. */
const PLAIN = ['/v1/a.b', '/v1/...', '/v1/.well-known/x', '/v1/..foo', '/v1/foo..', '/v1/;/x', '/v1/%2e%2e%2e', '/v1/a;..', '/v1/.x;y', '/v1/x%2e', '/v1/files/report.v2.pdf'];

t.test('hasDotSegment: every spelling, and names that merely contain dots', async (t) => {
  for (const p of DOTTED) t.ok(hasDotSegment(p), p);
  t.ok(hasDotSegment('/v1\\..\\admin'), 'backslashes as separators');
  for (const p of PLAIN) t.notOk(hasDotSegment(p), p);
  t.equal(rawPathOf('http://h:1/v1/..;/a?x=/../#f'), '/v1/..;/a', 'the query is not a path');
  t.equal(rawPathOf('http://h\\..\\a'), '\\..\\a', 'the parser ends an http authority at a backslash');
  t.equal(rawPathOf('/x/%2e?q'), '/x/%2e');
  t.equal(rawPathOf('http://h'), '');
});

t.test('a request to an integration-owned host with a dot segment in any spelling is 400 and never forwarded', async (t) => {
  const up = await startUpstream();
  const dir = configDir('store: memory\negress: { allow_private: ["127.0.0.0/8"] }\n', {
    api: `hosts: ["127.0.0.1:${up.port}"]\npaths: [/v1]\nupstream: http\nauth: { type: bearer }\n`,
  });
  const proxy = await startProxy(dir);
  t.teardown(async () => {
    await proxy.close();
    await up.close();
  });
  t.equal((await proxy.connect('alice', 'api', { credentials: { token: 'tok-v1' } })).status, 200);
  const alice = { 'X-Entity-Id': 'alice' };
  for (const p of DOTTED) {
    const r = await viaProxy(proxy.port, `${up.origin}${p}`, { headers: alice });
    t.equal(r.status, 400, p);
    t.equal(r.headers['x-credproxy-error'], 'bad_request', p);
  }
  // Without an entity, and outside the integration's paths (the host is still the integration's).
  t.equal((await viaProxy(proxy.port, `${up.origin}/other/..;/v1`)).status, 400);
  t.equal((await viaProxy(proxy.port, `${up.origin}/v1/..;/admin`)).status, 400);
  t.equal(up.seen.length, 0, 'nothing reached the upstream');
  for (const p of PLAIN) t.equal((await viaProxy(proxy.port, `${up.origin}${p}?q=/../x`, { headers: alice })).status, 200, p);
  t.equal(up.seen.length, PLAIN.length);
  t.ok(up.seen.every((s) => s.headers.authorization === 'Bearer tok-v1'));

  // The same inside a tunnel to the integration's host (plain HTTP, terminated).
  const tunnel = await connectVia(proxy.port, `127.0.0.1:${up.port}`);
  t.equal(tunnel.status, 200);
  const inner = await rawExchange(tunnel.socket, `GET /v1/..;/admin HTTP/1.1\r\nHost: 127.0.0.1:${up.port}\r\nX-Entity-Id: alice\r\nConnection: close\r\n\r\n`);
  t.equal(inner.status, 400);
  t.equal(inner.headers['x-credproxy-error'], 'bad_request');
  t.equal(up.seen.length, PLAIN.length, 'the tunnel forwarded nothing either');
});
