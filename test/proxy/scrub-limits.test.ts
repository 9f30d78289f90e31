import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import t from 'tap';
import { SCRUBBED } from '../../src/proxy/scrub.js';
import { errorOf, integrationYaml, setup, viaProxy } from '../support/servers.js';

/**
 * What scrubbing covers beyond a plain text body: URL headers always (a redirect carries a
 * query-injected key back even with scrub_responses off), and bodies an upstream compressed
 * although credproxy asked for identity.
 */
const KEY = 'maps-key-0123456789abcdef';
const QUERY_INJECT = 'inject:\n  query:\n    key: "{{api_key}}"\n';

t.test('Location, Content-Location, Link and Refresh never carry an injected value back, scrubbing on or off', async (t) => {
  const { up, proxy } = await setup(t, {
    handler: (req, res) => {
      // An upstream that redirects to its own URL with the query it was given (the key in it).
      const url = String(req.url);
      const back = `https://elsewhere.test/next?from=${encodeURIComponent(`https://api.test${url}`)}`;
      res.writeHead(302, {
        location: `https://api.test${url}`,
        'content-location': url,
        link: `<https://api.test${url}>; rel="next", <${back}>; rel="prev"`,
        refresh: `0; url=${url}`,
        'x-other': url,
      });
      res.end();
    },
    integrations: (up) => ({
      off: integrationYaml([`127.0.0.1:${up.port}`], '{ type: api_key }', `paths: ["/off"]\n${QUERY_INJECT}`),
      on: integrationYaml([`127.0.0.1:${up.port}`], '{ type: api_key }', `paths: ["/on"]\nscrub_responses: true\n${QUERY_INJECT}`),
    }),
  });
  for (const name of ['off', 'on']) {
    t.equal((await proxy.connect('alice', name, { credentials: { api_key: KEY } })).status, 200);
    const r = await viaProxy(proxy.port, `${up.origin}/${name}/geo?a=1`, { headers: { 'x-entity-id': 'alice' } });
    t.equal(r.status, 302);
    t.match(up.seen.at(-1)!.url, KEY, 'the upstream got the key in its query');
    for (const h of ['location', 'content-location', 'link', 'refresh']) {
      t.notMatch(String(r.headers[h]), KEY, `${name}: ${h} does not carry the key`);
      t.match(String(r.headers[h]), SCRUBBED, `${name}: ${h} shows where it was`);
    }
    t.notMatch(String(r.headers.link), encodeURIComponent(encodeURIComponent(KEY)), `${name}: nor twice percent-encoded`);
    if (name === 'on') t.notMatch(String(r.headers['x-other']), KEY, 'with scrub_responses, every header');
    else t.match(String(r.headers['x-other']), KEY, 'without, only the URL headers are touched');
  }
});

t.test('scrub_responses: an upstream that compresses anyway is decoded and scrubbed; an encoding credproxy cannot decode is refused', async (t) => {
  const body = `{"echo":"${KEY}","pad":"${'x'.repeat(100_000)}","again":"${KEY}"}`;
  const { up, proxy } = await setup(t, {
    handler: (req, res) => {
      const enc = String(req.url).split('/')[2] ?? '';
      const encoded: Record<string, () => Buffer> = {
        gzip: () => gzipSync(body),
        deflate: () => deflateSync(body),
        br: () => brotliCompressSync(body),
        'gzip, br': () => brotliCompressSync(gzipSync(body)),
        zstd: () => Buffer.from('not really zstd'),
        empty: () => Buffer.alloc(0),
        // gzip's magic, then the key in clear: must never reach the client as is
        corrupt: () => Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]), Buffer.from(`garbage ${KEY}`)]),
      };
      const name = decodeURIComponent(enc);
      const bytes = encoded[name]!();
      res.writeHead(name === 'empty' ? 204 : 200, { 'content-type': 'application/json', 'content-encoding': name === 'empty' || name === 'corrupt' ? 'gzip' : name, 'content-length': bytes.length });
      res.end(bytes);
    },
    integrations: (up) => ({ on: integrationYaml([`127.0.0.1:${up.port}`], '{ type: bearer }', 'paths: ["/z"]\nscrub_responses: true\n') }),
  });
  await proxy.connect('alice', 'on', { credentials: { token: KEY } });
  for (const enc of ['gzip', 'deflate', 'br', 'gzip, br']) {
    const r = await viaProxy(proxy.port, `${up.origin}/z/${encodeURIComponent(enc)}`, { headers: { 'x-entity-id': 'alice', 'accept-encoding': 'gzip, br' } });
    t.equal(r.status, 200, enc);
    t.equal(r.headers['content-encoding'], undefined, `${enc}: sent decoded`);
    const text = r.body.toString();
    t.notMatch(text, KEY, `${enc}: the key is scrubbed from the decoded body`);
    t.equal(text.split(SCRUBBED).length - 1, 2, `${enc}: both occurrences`);
    t.equal(text.length, body.length - 2 * KEY.length + 2 * SCRUBBED.length, `${enc}: the whole body`);
  }
  const empty = await viaProxy(proxy.port, `${up.origin}/z/empty`, { headers: { 'x-entity-id': 'alice' } });
  t.equal(empty.status, 204, 'an empty body with a Content-Encoding is not decoded');

  const corrupt = await viaProxy(proxy.port, `${up.origin}/z/corrupt`, { headers: { 'x-entity-id': 'alice' } }).catch((err: Error) => err);
  t.notMatch(corrupt instanceof Error ? '' : corrupt.body.toString(), KEY, 'a body that does not decode is cut off, never relayed raw');

  const refused = await viaProxy(proxy.port, `${up.origin}/z/zstd`, { headers: { 'x-entity-id': 'alice' } });
  const e = errorOf(refused);
  t.equal(e.status, 502);
  t.equal(e.code, 'upstream_error');
  t.match(e.message, /Content-Encoding "zstd".*cannot decode/);
  t.notMatch(refused.body.toString(), 'not really zstd', 'nothing of the body is relayed');
});
