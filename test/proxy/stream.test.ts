import http from 'node:http';
import t from 'tap';
import { configDir, integrationYaml, startProxy, type TestProxy } from '../support/servers.js';
import { digestOf, memoryWatch, patternStream, startStreamingUpstream } from '../support/streams.js';

/**
 * 50 MiB each way through the proxy, with the client, the proxy and the upstream all in this
 * process: if any hop buffered a whole body, this process would grow by at least 50 MiB.
 */
const SIZE = 50 * 1024 * 1024;
const LIMIT = 30 * 1024 * 1024;
const MiB = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;

function request(proxy: TestProxy, target: string, method: string, body?: NodeJS.ReadableStream) {
  return new Promise<http.IncomingMessage>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: proxy.port, method, path: target, headers: { 'X-Entity-Id': 'alice' }, agent: false }, resolve);
    req.on('error', reject);
    if (body) body.pipe(req);
    else req.end();
  });
}

t.test('a 50 MiB body each way streams with bounded memory and arrives intact', async (t) => {
  const expected = await digestOf(patternStream(SIZE));
  const up = await startStreamingUpstream((req, res) => {
    if (req.method === 'POST') {
      void digestOf(req).then((d) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ ...d, authorization: req.headers.authorization, chunked: req.headers['transfer-encoding'] === 'chunked' }));
      });
      return;
    }
    res.writeHead(200, { 'content-length': SIZE, 'content-type': 'application/octet-stream' });
    patternStream(SIZE).pipe(res);
  });
  t.teardown(() => up.close());
  const proxy = await startProxy(configDir('store: memory\n', { big: integrationYaml([`127.0.0.1:${up.port}`], '{ type: bearer }') }));
  t.teardown(() => proxy.close());
  await proxy.connect('alice', 'big', { credentials: { token: 'tok-big' } });
  await digestOf(await request(proxy, `${up.origin}/warm`, 'GET')); // pools and code paths warm

  const upload = memoryWatch();
  const answer = await request(proxy, `${up.origin}/upload`, 'POST', patternStream(SIZE));
  const chunks: Buffer[] = [];
  for await (const c of answer) chunks.push(c as Buffer);
  const up1 = upload.stop();
  const seen = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { bytes: number; sha256: string; authorization: string; chunked: boolean };
  t.same({ bytes: seen.bytes, sha256: seen.sha256 }, expected, 'upstream received every byte, in order');
  t.equal(seen.authorization, 'Bearer tok-big');
  t.ok(seen.chunked, 'a chunked upload stays chunked (no content-length invented by buffering)');
  t.comment(`upload: rss +${MiB(up1.rssGrowth)}, heap +${MiB(up1.heapGrowth)}`);
  t.ok(up1.rssGrowth < LIMIT, `upload RSS growth ${MiB(up1.rssGrowth)} < ${MiB(LIMIT)}`);
  t.ok(up1.heapGrowth < LIMIT, `upload heap growth ${MiB(up1.heapGrowth)} < ${MiB(LIMIT)}`);
  t.equal(answer.statusCode, 200);

  const download = memoryWatch();
  const res = await request(proxy, `${up.origin}/download`, 'GET');
  t.equal(res.headers['content-length'], String(SIZE), 'content-length passes through');
  const got = await digestOf(res);
  const d1 = download.stop();
  t.comment(`download: rss +${MiB(d1.rssGrowth)}, heap +${MiB(d1.heapGrowth)}`);
  t.same(got, expected, 'every byte arrived, in order');
  t.ok(d1.rssGrowth < LIMIT, `download RSS growth ${MiB(d1.rssGrowth)} < ${MiB(LIMIT)}`);
  t.ok(d1.heapGrowth < LIMIT, `download heap growth ${MiB(d1.heapGrowth)} < ${MiB(LIMIT)}`);
});
