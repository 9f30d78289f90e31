import t from 'tap';
import { rawRequest } from '../support/raw.js';
import { assertRefused, securityFixture, TOKEN } from '../support/security.js';

/**
 * Malformed request lines and header sections, sent as raw bytes because no well-behaved
 * client would send them. node's parser (llhttp, strict) refuses them before credproxy's
 * pipeline runs; these tests pin that the refusal is the documented 400/431 and that no byte
 * reaches the upstream that owns the credential.
 */
t.test('malformed framing is refused before anything is forwarded', async (t) => {
  const fx = await securityFixture(t, 'limits: { header_count: 50 }\n');
  const target = `${fx.owned.origin}/x`;
  const host = `127.0.0.1:${fx.owned.port}`;
  const head = (extra: string, line = `GET ${target} HTTP/1.1`) => `${line}\r\nHost: ${host}\r\nX-Entity-Id: alice\r\n${extra}\r\n`;

  const cases: Array<[name: string, bytes: string, status: number, code: string]> = [
    ['garbage request line', 'GARBAGE\r\n\r\n', 400, 'bad_request'],
    ['space inside the target', head('', `GET ${fx.owned.origin}/a b HTTP/1.1`), 400, 'bad_request'],
    ['unknown HTTP version', head('', `GET ${target} HTTP/9.9`), 400, 'bad_request'],
    ['control byte in the method', head('', `G\u0001T ${target} HTTP/1.1`), 400, 'bad_request'],
    ['Content-Length together with Transfer-Encoding', head('Content-Length: 4\r\nTransfer-Encoding: chunked\r\n') + '0\r\n\r\n', 400, 'bad_request'],
    ['two different Content-Lengths', head('Content-Length: 4\r\nContent-Length: 5\r\n') + 'abcde', 400, 'bad_request'],
    ['negative Content-Length', head('Content-Length: -1\r\n'), 400, 'bad_request'],
    ['non-numeric Content-Length', head('Content-Length: 4x\r\n'), 400, 'bad_request'],
    ['obs-fold continuation line', head('X-A: one\r\n two\r\n'), 400, 'bad_request'],
    ['bare LF between headers', `GET ${target} HTTP/1.1\r\nHost: ${host}\nX-Entity-Id: alice\r\n\r\n`, 400, 'bad_request'],
    ['space in a header name', head('X Bad: 1\r\n'), 400, 'bad_request'],
    ['space before the colon', head('X-Entity-Id : bob\r\n'), 400, 'bad_request'],
    ['header line without a colon', head('NoColonHere\r\n'), 400, 'bad_request'],
    ['NUL in a header value', head('X-A: a\u0000b\r\n'), 400, 'bad_request'],
    ['bare CR in a header value', head('X-A: a\rInjected: 1\r\n'), 400, 'bad_request'],
    ['chunked encoding not last', head('Transfer-Encoding: chunked, gzip\r\n') + '0\r\n\r\n', 400, 'bad_request'],
    ['an Expect other than 100-continue', head('Expect: teapot\r\n'), 400, 'bad_request'],
    ['header section over header_bytes', head(`X-Big: ${'a'.repeat(40 * 1024)}\r\n`), 431, 'headers_too_large'],
    ['more header fields than header_count', head(Array.from({ length: 60 }, (_, i) => `X-H${i}: ${i}\r\n`).join('')), 431, 'headers_too_large'],
  ];
  for (const [name, bytes, status, code] of cases) {
    await t.test(name, async (t) => {
      const before = fx.seenCount();
      const r = await rawRequest(fx.proxy.port, bytes);
      assertRefused(t, fx, before, r, status, code);
    });
  }

  await t.test('an absolute-form request without Host is served: the target is the request line', async (t) => {
    const r = await rawRequest(fx.proxy.port, `GET ${target} HTTP/1.1\r\nX-Entity-Id: alice\r\nConnection: close\r\n\r\n`);
    t.equal(r.status, 200);
    t.equal(fx.owned.seen.at(-1)?.headers.host, host);
  });

  await t.test('the same request, well formed, does go through (the cases above fail for their flaw alone)', async (t) => {
    const r = await rawRequest(fx.proxy.port, head('Connection: close\r\n'));
    t.equal(r.status, 200);
    t.equal(fx.owned.seen.at(-1)?.headers.authorization, `Bearer ${TOKEN}`);
  });
});

t.test('slowloris: a header section that never ends is cut off at request_header_timeout_ms', async (t) => {
  const fx = await securityFixture(t, 'limits: { request_header_timeout_ms: 200 }\n');
  const before = fx.seenCount();
  // Half a header section, then silence: the server has to end it, not the client.
  const r = await rawRequest(fx.proxy.port, `GET ${fx.owned.origin}/x HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Entity-Id: al`);
  assertRefused(t, fx, before, r, 400, 'bad_request');
  t.match(r.body, /did not arrive in time/);
});
