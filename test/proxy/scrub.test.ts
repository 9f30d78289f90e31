import { Readable } from 'node:stream';
import t from 'tap';
import { decodersFor, SCRUBBED, ScrubStream, scrubbable } from '../../src/proxy/scrub.js';
import { integrationYaml, setup, viaProxy } from '../support/servers.js';

async function through(secrets: string[], chunks: string[]): Promise<string> {
  const out: Buffer[] = [];
  const s = Readable.from(chunks.map((c) => Buffer.from(c))).pipe(new ScrubStream(secrets));
  for await (const c of s) out.push(c as Buffer);
  return Buffer.concat(out).toString();
}

t.test('ScrubStream replaces secrets across any chunk boundary', async (t) => {
  const text = 'a SECRET-12345 b SECRET-12345c SECRET-1234 d sk-other-999 end';
  const want = `a ${SCRUBBED} b ${SCRUBBED}c SECRET-1234 d ${SCRUBBED} end`;
  const secrets = ['SECRET-12345', 'sk-other-999'];
  t.equal(await through(secrets, [text]), want);
  for (let size = 1; size <= 13; size++) {
    const chunks: string[] = [];
    for (let i = 0; i < text.length; i += size) chunks.push(text.slice(i, i + size));
    t.equal(await through(secrets, chunks), want, `chunks of ${size}`);
  }
  t.equal(await through(secrets, ['SECRET-', '12345']), SCRUBBED, 'split in two, at the end');
  t.equal(await through(secrets, ['no secret here']), 'no secret here');
  t.ok(scrubbable({ 'content-type': 'application/json; charset=utf-8' }));
  t.ok(scrubbable({}));
  t.notOk(scrubbable({ 'content-type': 'image/png' }));
  t.ok(scrubbable({ 'content-type': 'text/plain', 'content-encoding': 'gzip' }), 'a compressed text body is decoded to be scrubbed (scrub-limits.test.ts)');
  t.equal(decodersFor({ 'content-encoding': 'gzip, br' }).decoders.length, 2);
  t.equal(decodersFor({ 'content-encoding': 'zstd' }).unknown, 'zstd');
});

t.test('scrub_responses: an echoed key is scrubbed from headers and a streamed body; off by default', async (t) => {
  const KEY = 'sk-live-abcdef-0123456789';
  const { up, proxy } = await setup(t, {
    handler: (req, res) => {
      const auth = String(req.headers.authorization ?? '');
      res.writeHead(200, { 'content-type': 'text/plain', 'x-echo': auth, 'x-enc': String(req.headers['accept-encoding'] ?? '') });
      // The key split over two writes, then a large body with the key every 64 KiB.
      const half = Math.floor(auth.length / 2);
      res.write(`start ${auth.slice(0, half)}`);
      setImmediate(() => {
        res.write(`${auth.slice(half)} middle `);
        const filler = 'x'.repeat(65_536 - KEY.length);
        for (let i = 0; i < 32; i++) res.write(`${filler}${KEY}`);
        res.end(' end');
      });
    },
    integrations: (up) => ({
      on: integrationYaml([`127.0.0.1:${up.port}`], '{ type: bearer }', 'paths: ["/on"]\nscrub_responses: true\n'),
      off: integrationYaml([`127.0.0.1:${up.port}`], '{ type: bearer }', 'paths: ["/off"]\n'),
    }),
  });
  await proxy.connect('alice', 'on', { credentials: { token: KEY } });
  await proxy.connect('alice', 'off', { credentials: { token: KEY } });
  const on = await viaProxy(proxy.port, `${up.origin}/on`, { headers: { 'x-entity-id': 'alice', 'accept-encoding': 'gzip' } });
  t.equal(on.status, 200);
  const body = on.body.toString();
  t.notMatch(body, KEY, 'no key in the body');
  t.ok(body.startsWith(`start ${SCRUBBED} middle `), `the whole injected value, split over two writes: ${body.slice(0, 60)}`);
  t.equal(body.split(SCRUBBED).length - 1, 33, 'every occurrence replaced');
  t.ok(body.endsWith(' end'));
  t.equal(on.headers["x-echo"], SCRUBBED);
  t.equal(on.headers['x-enc'], 'identity', 'the upstream was asked for an uncompressed answer');
  t.equal(up.seen.at(-1)!.headers.authorization, `Bearer ${KEY}`, 'the upstream still got the key');

  const off = await viaProxy(proxy.port, `${up.origin}/off`, { headers: { 'x-entity-id': 'alice' } });
  t.match(off.body.toString(), KEY, 'without scrub_responses the body is untouched');
});
