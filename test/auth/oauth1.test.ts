import { createHmac, generateKeyPairSync, timingSafeEqual, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import OAuth from 'oauth-1.0a';
import t from 'tap';
import { oauth1, OAuth1Scheme, formPairs, signatureBaseString } from '../../src/auth/oauth1.js';
import { definitionOf } from '../support/schemes.js';
import type { IntegrationConfig } from '../../src/config/types.js';
import { configDir, startProxy, startUpstream, viaProxy } from '../support/servers.js';

interface Example {
  name: string;
  method: string;
  url: string;
  content_type?: string;
  body?: string;
  consumer_key: string;
  consumer_secret?: string;
  token: string;
  token_secret?: string;
  signature_method: 'HMAC-SHA1';
  timestamp: string;
  nonce: string;
  version?: string;
  base_string: string;
  signature?: string;
}
const { examples } = JSON.parse(readFileSync(new URL('../fixtures/oauth1-signatures.json', import.meta.url), 'utf8')) as { examples: Example[] };

/** The parameters of `Authorization: OAuth k="v", …`, decoded. */
function authParams(header: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of header.replace(/^OAuth /, '').matchAll(/([a-z_]+)="([^"]*)"/g)) out[m[1]!] = decodeURIComponent(m[2]!);
  return out;
}

t.test('RFC 5849 signature base strings and signatures', async (t) => {
  for (const ex of examples) {
    const url = new URL(ex.url);
    const oauth: Array<[string, string]> = [
      ['oauth_consumer_key', ex.consumer_key],
      ['oauth_token', ex.token],
      ['oauth_signature_method', ex.signature_method],
      ['oauth_timestamp', ex.timestamp],
      ['oauth_nonce', ex.nonce],
      ...(ex.version ? [['oauth_version', ex.version] as [string, string]] : []),
    ];
    const params = [...oauth, ...formPairs(url.search.slice(1)), ...formPairs(ex.body ?? '')];
    t.equal(signatureBaseString(ex.method, url, params), ex.base_string, `${ex.name}: base string`);
    if (ex.signature && !ex.version) {
      // Through the scheme itself, with the example's timestamp and nonce.
      const scheme = new OAuth1Scheme(
        definitionOf(oauth1, { type: 'oauth1', consumer_key: ex.consumer_key, consumer_secret: ex.consumer_secret, signature_method: ex.signature_method, realm: 'Photos' }),
        { now: () => Number(ex.timestamp) * 1000, nonce: () => ex.nonce },
      );
      const signed = await scheme.sign(
        { method: ex.method, url, headers: ['host', url.host], body: async () => null },
        { entity: 'e', integration: {} as IntegrationConfig, connection: { credentials: { token: ex.token, token_secret: ex.token_secret! } } as never },
      );
      const header = signed.headers[0]![1];
      t.match(header, /^OAuth realm="Photos", oauth_consumer_key="dpf43f3p2l4k3l03", /);
      t.equal(authParams(header).oauth_signature, ex.signature, `${ex.name}: signature`);
    } else if (ex.signature) {
      const key = `${ex.consumer_secret}&${ex.token_secret}`;
      t.equal(createHmac('sha1', key).update(ex.base_string).digest('base64'), ex.signature, `${ex.name}: signature`);
    }
  }
});

t.test('oauth1 through the proxy: the upstream checks each signature method with an independent implementation', async (t) => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const consumerSecret = 'consumer-secret-ß&=';
  const tokenSecret = 'token secret/+';
  const results: Record<string, boolean> = {};
  const up = await startUpstream((req, res, body) => {
    const auth = authParams(req.headers.authorization ?? '');
    const { oauth_signature: signature, ...oauthData } = auth;
    const method = auth.oauth_signature_method!;
    const hash = (base: string, key: string) =>
      method === 'PLAINTEXT' ? key : createHmac(method === 'HMAC-SHA256' ? 'sha256' : 'sha1', key).update(base).digest('base64');
    const lib = new OAuth({ consumer: { key: 'ck-1', secret: consumerSecret }, signature_method: method, hash_function: hash });
    const isForm = (req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded');
    const request = { url: `http://${req.headers.host}${req.url}`, method: req.method!, data: isForm ? Object.fromEntries(new URLSearchParams(body.toString())) : {} };
    let ok: boolean;
    if (method === 'RSA-SHA1') {
      const base = lib.getBaseString(request, oauthData as unknown as OAuth.Data);
      ok = verify('RSA-SHA1', Buffer.from(base), rsa.publicKey, Buffer.from(signature!, 'base64'));
    } else {
      const expected = Buffer.from(lib.getSignature(request, tokenSecret, oauthData as unknown as OAuth.Data));
      ok = expected.length === Buffer.from(signature!).length && timingSafeEqual(expected, Buffer.from(signature!));
    }
    results[`${req.method} ${req.url} ${method}`] = ok && auth.oauth_token === 'tok-1' && auth.oauth_consumer_key === 'ck-1';
    res.writeHead(ok ? 200 : 401).end();
  });
  const rsaPem = rsa.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  const integ = (path: string, extra: string) => `hosts: ["127.0.0.1:${up.port}"]\npaths: [${path}]\nupstream: http\nauth: { type: oauth1, consumer_key: ck-1, ${extra} }\n`;
  const dir = configDir('store: memory\nlimits: { replay_body_bytes: 1024 }\n', {
    sha1: integ('/sha1', 'consumer_secret: "${CS}"'),
    sha256: integ('/sha256', 'consumer_secret: "${CS}", signature_method: HMAC-SHA256'),
    plain: integ('/plain', 'consumer_secret: "${CS}", signature_method: PLAINTEXT'),
    rsa: integ('/rsa', 'consumer_secret: "${RSA}", signature_method: RSA-SHA1'),
  });
  const proxy = await startProxy(dir, { env: { CS: consumerSecret, RSA: rsaPem } });
  t.teardown(async () => {
    await proxy.close();
    await up.close();
  });
  for (const name of ['sha1', 'sha256', 'plain', 'rsa']) {
    t.equal((await proxy.connect('alice', name, { credentials: { token: 'tok-1', token_secret: tokenSecret } })).status, 200);
  }
  const headers = { 'X-Entity-Id': 'alice' };
  const form = { ...headers, 'content-type': 'application/x-www-form-urlencoded', Authorization: 'OAuth spoofed="1"' };
  // No '+' in the query: oauth-1.0a reads it literally, RFC 5849 §3.4.1.3.1 as a space (the fixtures cover that).
  for (const name of ['sha1', 'sha256', 'plain', 'rsa']) {
    t.equal((await viaProxy(proxy.port, `${up.origin}/${name}/statuses?q=caf%C3%A9%20au%20lait&a=1&a=0&empty=`, { headers })).status, 200, `${name} GET`);
    t.equal((await viaProxy(proxy.port, `${up.origin}/${name}/update?x=1`, { method: 'POST', headers: form, body: 'status=Hello%20Ladies%20%2B%20Gentlemen%2C%20a%20signed%20OAuth%20request%21&include_entities=true' })).status, 200, `${name} POST form`);
  }
  t.equal(Object.keys(results).length, 8);
  t.ok(Object.values(results).every(Boolean), JSON.stringify(results));
  t.equal(up.seen[1]!.rawHeaders.filter((h) => h.toLowerCase() === 'authorization').length, 1, 'the client’s own Authorization is replaced');
  t.equal(up.seen[1]!.body.toString(), 'status=Hello%20Ladies%20%2B%20Gentlemen%2C%20a%20signed%20OAuth%20request%21&include_entities=true', 'the body arrives unchanged');

  // A form body over the buffer limit cannot be signed: 413 before anything is sent.
  const before = up.seen.length;
  const big = await viaProxy(proxy.port, `${up.origin}/sha1/upload`, { method: 'POST', headers: form, body: `data=${'x'.repeat(4096)}` });
  t.equal(big.status, 413);
  t.equal(big.headers['x-credproxy-error'], 'payload_too_large');
  t.match(big.json<{ error: { message: string } }>().error.message, /limits\.replay_body_bytes/);
  t.equal(up.seen.length, before);
  // Other bodies are not part of the signature and stream through whatever their size.
  const blob = await viaProxy(proxy.port, `${up.origin}/sha1/upload`, { method: 'PUT', headers: { ...headers, 'content-type': 'application/octet-stream' }, body: Buffer.alloc(8192, 1) });
  t.equal(blob.status, 200);
  t.equal(up.seen.at(-1)!.body.length, 8192);
  t.notMatch(proxy.logs.text, /tok-1|token secret/);
});

t.test('oauth1: a path starting with // is signed for the real host, not a network-path reference', async (t) => {
  const consumerSecret = 'cs-1';
  const tokenSecret = 'ts-1';
  const results: boolean[] = [];
  const up = await startUpstream((req, res) => {
    const auth = authParams(req.headers.authorization ?? '');
    const { oauth_signature: signature, ...oauthData } = auth;
    const hash = (base: string, key: string) => createHmac('sha1', key).update(base).digest('base64');
    const lib = new OAuth({ consumer: { key: 'ck-1', secret: consumerSecret }, signature_method: 'HMAC-SHA1', hash_function: hash });
    // The base string URI is the host the request reached and the path it carried.
    const expected = lib.getSignature({ url: `http://${req.headers.host}${req.url}`, method: req.method!, data: {} }, tokenSecret, oauthData as unknown as OAuth.Data);
    const ok = expected === signature;
    results.push(ok);
    res.writeHead(ok ? 200 : 401).end();
  });
  const dir = configDir('store: memory\n', { o: `hosts: ["127.0.0.1:${up.port}"]\nupstream: http\nauth: { type: oauth1, consumer_key: ck-1, consumer_secret: "${consumerSecret}" }\n` });
  const proxy = await startProxy(dir);
  t.teardown(async () => {
    await proxy.close();
    await up.close();
  });
  t.equal((await proxy.connect('alice', 'o', { credentials: { token: 'tok-1', token_secret: tokenSecret } })).status, 200);
  const r = await viaProxy(proxy.port, `${up.origin}//bucket-key/with/slash?a=1`, { headers: { 'X-Entity-Id': 'alice' } });
  t.equal(r.status, 200);
  t.equal(up.seen[0]!.url, '//bucket-key/with/slash?a=1');
  t.same(results, [true]);
});
