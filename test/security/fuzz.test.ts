import fc from 'fast-check';
import t from 'tap';
import { rawRequest } from '../support/raw.js';
import { configDir, startProxy, startUpstream, type Upstream } from '../support/servers.js';

/**
 * Seeded property test: random, often malformed requests at two integrations and an echo
 * passthrough host. Properties: the process keeps answering, and a credential only ever
 * reaches the integration that owns it, for the entity the request named.
 */
const SEED = 20261125;
const RUNS = 150;
const ENTITIES = ['alice', 'bob'];
const token = (integration: string, entity: string) => `tok-${integration}-${entity}-0123456789`;
const ALL_TOKENS = ['a', 'b'].flatMap((i) => ENTITIES.map((e) => token(i, e)));

t.test(`fuzz: ${RUNS} random requests (seed ${SEED})`, async (t) => {
  const a = await startUpstream();
  const b = await startUpstream();
  const echo = await startUpstream();
  const dir = configDir('store: memory\negress: { allow_private: ["127.0.0.0/8"] }\nlimits: { header_count: 40 }\n', {
    a: `hosts: ["127.0.0.1:${a.port}"]\nupstream: http\nauth: { type: bearer }\n`,
    b: `hosts: ["localhost:${b.port}"]\nupstream: http\nauth: { type: api_key }\ninject: { headers: { X-Api-Key: "{{api_key}}" } }\n`,
  });
  const proxy = await startProxy(dir);
  t.teardown(async () => {
    await proxy.close();
    await Promise.all([a.close(), b.close(), echo.close()]);
  });
  for (const e of ENTITIES) {
    await proxy.connect(e, 'a', { credentials: { token: token('a', e) } });
    await proxy.connect(e, 'b', { credentials: { api_key: token('b', e) } });
  }

  const hosts = [`127.0.0.1:${a.port}`, `localhost:${b.port}`, `127.0.0.1:${echo.port}`, `LOCALHOST.:${b.port}`, `0x7f.1:${a.port}`, `[::ffff:127.0.0.1]:${echo.port}`, 'example.invalid'];
  const token68 = fc.stringMatching(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,12}$/);
  const anyText = fc.string({ unit: 'binary-ascii', maxLength: 30 });
  const printable = fc.string({ unit: 'grapheme-ascii', maxLength: 30 });
  // Mostly plausible, sometimes hostile: a request that is all noise only ever tests the parser.
  const mostly = <T>(good: fc.Arbitrary<T>, bad: fc.Arbitrary<T>) => fc.oneof({ arbitrary: good, weight: 6 }, { arbitrary: bad, weight: 1 });
  const header = fc.oneof(
    { arbitrary: fc.tuple(fc.constantFrom('Host', 'Connection', 'X-Entity-Id', 'Authorization', 'X-Api-Key', 'Proxy-Authorization', 'Cookie', 'TE', 'Upgrade', 'Expect'), mostly(fc.constantFrom('alice', 'bob', 'close', 'Authorization, X-Entity-Id', 'X-Api-Key', 'alice,bob', 'trailers'), printable)), weight: 4 },
    { arbitrary: fc.tuple(token68, printable), weight: 4 },
    { arbitrary: fc.tuple(anyText, anyText), weight: 1 },
  );
  const request = fc.record({
    method: mostly(fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH'), token68),
    scheme: mostly(fc.constant('http://'), fc.constantFrom('https://', 'HTTP://', 'ftp://', '')),
    host: mostly(fc.constantFrom(...hosts), anyText),
    path: mostly(fc.webPath(), anyText.map((s) => `/${s}`)),
    entity: fc.option(mostly(fc.constantFrom(...ENTITIES), anyText), { nil: undefined, freq: 4 }),
    headers: fc.array(header, { maxLength: 6 }),
    body: fc.option(fc.string({ maxLength: 64 }), { nil: undefined }),
    version: mostly(fc.constant('HTTP/1.1'), fc.constantFrom('HTTP/1.0', 'HTTP/2.0', '')),
  });

  const seenBefore = (u: Upstream) => u.seen.length;
  let answered = 0;
  const statuses = new Map<string, number>();
  await fc.assert(
    fc.asyncProperty(request, async (r) => {
      const counts = [a, b, echo].map(seenBefore);
      let text = `${r.method} ${r.scheme}${r.host}${r.path} ${r.version}\r\n`;
      if (r.entity !== undefined) text += `X-Entity-Id: ${r.entity}\r\n`;
      for (const [n, v] of r.headers) text += `${n}: ${v}\r\n`;
      if (r.body !== undefined) text += `Content-Length: ${Buffer.byteLength(r.body)}\r\n`;
      text += `Connection: close\r\n\r\n${r.body ?? ''}`;
      const res = await rawRequest(proxy.port, text);
      if (res.status > 0) answered++;
      // The upstreams only ever answer 2xx, so every error is credproxy's own and must say so.
      if (res.status >= 400 && !res.headers['x-credproxy-error']) throw new Error(`a ${res.status} without X-Credproxy-Error`);
      statuses.set(`${res.status} ${res.headers['x-credproxy-error'] ?? ''}`, (statuses.get(`${res.status} ${res.headers['x-credproxy-error'] ?? ''}`) ?? 0) + 1);

      // Every request an integration upstream saw carries only its own credential, for the
      // entity the request named; the passthrough echo never sees any credential.
      for (const [i, up] of [['a', a], ['b', b]] as const) {
        for (const s of up.seen.slice(counts[i === 'a' ? 0 : 1])) {
          const dump = JSON.stringify(s.headers) + s.url;
          const own = ENTITIES.filter((e) => dump.includes(token(i, e)));
          const foreign = ALL_TOKENS.filter((tk) => !tk.startsWith(`tok-${i}-`) && dump.includes(tk));
          if (foreign.length > 0) throw new Error(`integration ${i} received another integration's credential`);
          if (own.length !== 1 || own[0] !== r.entity) throw new Error(`integration ${i} received ${own.join(',') || 'no'} credential for entity ${String(r.entity)}`);
        }
      }
      for (const s of echo.seen.slice(counts[2])) {
        const dump = JSON.stringify(s.headers) + s.url;
        if (ALL_TOKENS.some((tk) => dump.includes(tk))) throw new Error('the passthrough host received a credential');
      }
    }),
    { seed: SEED, numRuns: RUNS, endOnFailure: true },
  );
  t.comment(JSON.stringify([...statuses]));
  t.ok(answered > 0, `${answered} of ${RUNS} requests got an HTTP answer`);
  const health = await fetch(`${proxy.url}/healthz`);
  t.equal(health.status, 200, 'the process is still up');
  t.ok(a.seen.length > 0 && b.seen.length > 0 && echo.seen.length > 0, `forwarded: ${a.seen.length} to a, ${b.seen.length} to b, ${echo.seen.length} passthrough`);
  for (const tk of ALL_TOKENS) t.notMatch(proxy.logs.text, tk, 'no credential in the logs');
});
