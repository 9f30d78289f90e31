import t from 'tap';
import { configDir, rawRequest, startProxy } from './support/servers.js';

t.test('requests node cannot take get one of credproxy\'s own answers', async (t) => {
  const proxy = await startProxy(configDir('store: memory\n'));
  t.teardown(() => proxy.close());

  const connect = await rawRequest(proxy.port, 'CONNECT api.example.com HTTP/1.1\r\nHost: api.example.com\r\n\r\n');
  t.match(connect, /^HTTP\/1\.1 400 /, 'a CONNECT target without a port');
  t.match(connect, /x-credproxy-error: bad_request/);

  const garbage = await rawRequest(proxy.port, 'NOT HTTP AT ALL\r\n\r\n');
  t.match(garbage, /^HTTP\/1\.1 400 /);
  t.match(garbage, /"code":"bad_request"/);

  const huge = await rawRequest(proxy.port, `GET http://x.example/ HTTP/1.1\r\nHost: x.example\r\nX-Big: ${'a'.repeat(40 * 1024)}\r\n\r\n`);
  t.match(huge, /^HTTP\/1\.1 431 /);
  t.match(huge, /x-credproxy-error: headers_too_large/);

  const scheme = await rawRequest(proxy.port, 'GET ftp://x.example/ HTTP/1.1\r\nHost: x.example\r\nConnection: close\r\n\r\n');
  t.match(scheme, /^HTTP\/1\.1 400 /);
  t.match(scheme, /not proxied/);

  const badTarget = await rawRequest(proxy.port, 'GET http://[bad/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  t.match(badTarget, /^HTTP\/1\.1 400 /);
  t.match(badTarget, /not a valid absolute URL/);
});

t.test('a request with both Content-Length and Transfer-Encoding is refused (no smuggling)', async (t) => {
  const proxy = await startProxy(configDir('store: memory\n'));
  t.teardown(() => proxy.close());
  const both = await rawRequest(
    proxy.port,
    'POST http://127.0.0.1:1/ HTTP/1.1\r\nHost: 127.0.0.1:1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n',
  );
  t.match(both, /^HTTP\/1\.1 400 /);
  t.equal(both.match(/HTTP\/1\.1/g)?.length, 1, 'one answer: the smuggled request was not run');
});

