import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import t from 'tap';
import { CredproxyError, ERRORS, errorAnswer, isCredproxyError, sendError, sendRawError } from '../src/errors.js';

/* The Errors table of docs/errors.md is checked against ERRORS in test/readme.test.ts. */

/** DESIGN.md, "Errors that credproxy itself answers" (contract): status and codes, row by row. */
const CONTRACT: Array<[number, string[]]> = [
  [400, ['entity_required']],
  [400, ['bad_request']],
  [401, ['unauthorized']],
  [403, ['host_denied', 'entity_denied']],
  [407, ['proxy_auth_required']],
  [424, ['connection_missing']],
  [424, ['connection_expired']],
  [429, ['rate_limited']],
  [502, ['upstream_error', 'refresh_failed']],
  [503, ['store_unavailable']],
  [504, ['upstream_timeout']],
];

t.test('every contract code of DESIGN.md is in ERRORS with its status', async (t) => {
  for (const [status, codes] of CONTRACT) {
    for (const code of codes) t.equal(ERRORS[code as keyof typeof ERRORS]?.status, status, `${code}: ${status}`);
  }
});

t.test('CredproxyError and sendError, on a real server', async (t) => {
  const e = new CredproxyError('rate_limited', undefined, { 'retry-after': '3' });
  t.equal(e.message, ERRORS.rate_limited.message, 'the registry message by default');
  t.equal(e.status, 429);
  t.ok(isCredproxyError(e));
  t.notOk(isCredproxyError(new Error('x')));
  const server = http.createServer((req, res) => {
    if (req.url === '/late') res.writeHead(200).write('partial');
    sendError(res, e);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const r = await fetch(`${base}/`);
  t.equal(r.status, 429);
  t.equal(r.headers.get('retry-after'), '3');
  t.equal(r.headers.get('x-credproxy-error'), 'rate_limited');
  t.match(r.headers.get('content-type'), /application\/json/);
  t.same(await r.json(), { error: { code: 'rate_limited', message: ERRORS.rate_limited.message } });
  await t.rejects(fetch(`${base}/late`).then((l) => l.text()), 'a response under way is cut off instead');
});

t.test('one answer for every sink: a response, a raw socket, and extra fields beside the error', async (t) => {
  const e = new CredproxyError('proxy_auth_required', 'the proxy key is not valid', { 'proxy-authenticate': 'Basic realm="credproxy"' });
  const a = errorAnswer(e, { verification: { ok: false } });
  t.same(JSON.parse(a.body), { error: { code: 'proxy_auth_required', message: 'the proxy key is not valid' }, verification: { ok: false } });
  t.equal(a.headers['x-credproxy-error'], 'proxy_auth_required');
  t.equal(a.headers['content-length'], String(Buffer.byteLength(a.body)));

  const server = net.createServer((socket) => socket.once('data', () => sendRawError(socket, e)));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const text = await new Promise<string>((resolve, reject) => {
    const c = net.connect((server.address() as AddressInfo).port, '127.0.0.1', () => c.write('CONNECT x:443 HTTP/1.1\r\n\r\n'));
    let got = '';
    c.on('data', (d) => (got += d.toString('latin1')));
    c.on('end', () => resolve(got));
    c.on('error', reject);
  });
  const [head = '', body] = text.split('\r\n\r\n');
  t.match(head, /^HTTP\/1\.1 407 Proxy Authentication Required\r\n/);
  t.match(head, /\r\nproxy-authenticate: Basic realm="credproxy"\r\n/);
  t.match(head, /\r\nx-credproxy-error: proxy_auth_required\r\n/);
  t.match(head, /\r\nconnection: close$/);
  t.same(JSON.parse(body ?? ''), { error: { code: 'proxy_auth_required', message: 'the proxy key is not valid' } });
});
