import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import t from 'tap';
import { awsSigV4, AwsSigV4Scheme } from '../../src/auth/aws-sigv4.js';
import { definitionOf } from '../support/schemes.js';
import type { IntegrationConfig } from '../../src/config/types.js';
import { configDir, startProxy, startUpstream, viaProxy } from '../support/servers.js';
import { verifySigV4 } from '../support/sigv4-verify.js';

interface Suite {
  credentials: { access_key_id: string; secret_access_key: string };
  region: string;
  service: string;
  vectors: Array<{ name: string; request: string; authorization: string }>;
}
const suite = JSON.parse(readFileSync(new URL('../fixtures/aws-sigv4-vectors.json', import.meta.url), 'utf8')) as Suite;

/** A test-suite .req file: request line, `Name:value` headers, blank line, body. */
function parseReq(text: string) {
  const [head = '', body = ''] = text.split(/\n\n/s);
  const [line = '', ...headerLines] = head.split('\n');
  const [method = '', target = ''] = line.split(' ');
  const headers: string[] = [];
  for (const h of headerLines) {
    const i = h.indexOf(':');
    headers.push(h.slice(0, i), h.slice(i + 1));
  }
  return { method, target, headers, body };
}

t.test('the signer reproduces the AWS SigV4 test-suite signatures', async (t) => {
  const scheme = new AwsSigV4Scheme(definitionOf(awsSigV4, { type: 'aws_sigv4', region: suite.region, service: suite.service }), () => Date.UTC(2015, 7, 30, 12, 36, 0));
  const cred = { entity: 'e', integration: {} as IntegrationConfig, connection: { credentials: suite.credentials } as never };
  for (const v of suite.vectors) {
    const req = parseReq(v.request);
    // The scheme sets X-Amz-Date itself from its clock; the client's copy is not used.
    const headers = req.headers.filter((_, i, a) => (i % 2 === 0 ? a[i]!.toLowerCase() !== 'x-amz-date' : a[i - 1]!.toLowerCase() !== 'x-amz-date'));
    const signed = await scheme.sign(
      { method: req.method, url: new URL(req.target, 'https://example.amazonaws.com'), headers, body: async () => (req.body ? Buffer.from(req.body) : null) },
      cred,
    );
    const out = Object.fromEntries(signed.headers);
    t.equal(out.authorization, v.authorization, v.name);
    t.equal(out['x-amz-date'], '20150830T123600Z');

    // The verifier the upstreams below use agrees with the suite too, so it can be trusted.
    const received: Record<string, string> = { authorization: v.authorization };
    for (let i = 0; i < req.headers.length; i += 2) received[req.headers[i]!.toLowerCase()] = req.headers[i + 1]!;
    t.equal(verifySigV4({ method: req.method, url: req.target, headers: received, body: Buffer.from(req.body) }, { AKIDEXAMPLE: suite.credentials.secret_access_key }), undefined, `${v.name}: test verifier`);
  }
});

t.test('aws_sigv4 through the proxy: the upstream verifies every request independently', async (t) => {
  const secrets = { AKIAALICE: 'alice/secret+key', AKIABOB: 'bob-secret' };
  const verdicts: Array<string | undefined> = [];
  const handler = (s3: boolean) => (req: { method?: string; url?: string; headers: Record<string, string | string[] | undefined> }, res: { writeHead(n: number): { end(b?: string): void } }, body: Buffer) => {
    const problem = verifySigV4({ method: req.method!, url: req.url!, headers: req.headers, body }, secrets, { s3 });
    verdicts.push(problem);
    res.writeHead(problem ? 403 : 200).end(problem);
  };
  const api = await startUpstream(handler(false));
  const s3 = await startUpstream(handler(true));
  const dir = configDir('store: memory\nlimits: { replay_body_bytes: 2048 }\n', {
    lambda: `hosts: ["127.0.0.1:${api.port}"]\nupstream: http\nauth: { type: aws_sigv4, region: eu-west-1, service: lambda }\n`,
    s3: `hosts: ["127.0.0.1:${s3.port}"]\nupstream: http\nauth: { type: aws_sigv4, region: us-east-1, service: s3 }\n`,
  });
  const proxy = await startProxy(dir);
  t.teardown(async () => {
    await proxy.close();
    await api.close();
    await s3.close();
  });
  t.equal((await proxy.connect('alice', 'lambda', { credentials: { access_key_id: 'AKIAALICE', secret_access_key: secrets.AKIAALICE, session_token: 'FwoGZXIvYXdzEBYaD+session/token=' } })).status, 200);
  t.equal((await proxy.connect('bob', 'lambda', { credentials: { access_key_id: 'AKIABOB', secret_access_key: secrets.AKIABOB } })).status, 200);
  t.equal((await proxy.connect('alice', 's3', { credentials: { access_key_id: 'AKIAALICE', secret_access_key: secrets.AKIAALICE } })).status, 200);
  const alice = { 'X-Entity-Id': 'alice' };

  const json = JSON.stringify({ hello: 'world', n: [1, 2, 3] });
  const r1 = await viaProxy(proxy.port, `${api.origin}/2015-03-31/functions/my%20fn/invocations?Qualifier=%24LATEST&b=2&a=1&a=0`, {
    method: 'POST',
    headers: { ...alice, 'content-type': 'application/json', 'X-Amz-Invocation-Type': 'Event', Authorization: 'AWS4-HMAC-SHA256 spoofed', 'X-Amz-Date': '19990101T000000Z' },
    body: json,
  });
  t.equal(r1.status, 200, r1.body.toString());
  const seen = api.seen[0]!;
  t.equal(seen.headers['x-amz-security-token'], 'FwoGZXIvYXdzEBYaD+session/token=');
  t.match(seen.headers.authorization, /SignedHeaders=content-type;host;x-amz-date;x-amz-invocation-type;x-amz-security-token,/);
  t.not(seen.headers['x-amz-date'], '19990101T000000Z', 'the client’s own date is replaced');
  t.equal(seen.body.toString(), json);
  t.equal((await viaProxy(proxy.port, `${api.origin}/x`, { headers: { 'X-Entity-Id': 'bob', 'X-Amz-Security-Token': 'client-own', 'X-Amz-Content-Sha256': 'UNSIGNED-PAYLOAD' } })).status, 200);
  t.notOk('x-amz-security-token' in api.seen[1]!.headers, 'no session token: the client’s own is dropped, not forwarded unsigned');
  t.notOk('x-amz-content-sha256' in api.seen[1]!.headers);
  t.match(api.seen[1]!.headers.authorization, /^AWS4-HMAC-SHA256 Credential=AKIABOB\/\d{8}\/eu-west-1\/lambda\/aws4_request, /);

  // A body too large to hash cannot be signed for a service without UNSIGNED-PAYLOAD.
  const big = Buffer.alloc(4096, 7);
  const tooBig = await viaProxy(proxy.port, `${api.origin}/upload`, { method: 'PUT', headers: alice, body: big });
  t.equal(tooBig.status, 413);
  t.equal(tooBig.headers['x-credproxy-error'], 'payload_too_large');
  t.match(tooBig.json<{ error: { message: string } }>().error.message, /service "lambda" does not accept UNSIGNED-PAYLOAD/);
  t.equal(api.seen.length, 2, 'nothing was sent');

  // S3: small bodies are hashed, larger ones go as UNSIGNED-PAYLOAD and still arrive whole.
  const small = Buffer.from('tiny object');
  t.equal((await viaProxy(proxy.port, `${s3.origin}/bucket/a%20key.txt`, { method: 'PUT', headers: alice, body: small })).status, 200);
  t.equal(s3.seen[0]!.headers['x-amz-content-sha256'], createHash('sha256').update(small).digest('hex'));
  const r3 = await viaProxy(proxy.port, `${s3.origin}/bucket/big.bin`, { method: 'PUT', headers: { ...alice, 'content-type': 'application/octet-stream' }, body: big });
  t.equal(r3.status, 200, r3.body.toString());
  t.equal(s3.seen[1]!.headers['x-amz-content-sha256'], 'UNSIGNED-PAYLOAD');
  t.same(s3.seen[1]!.body, big);
  t.equal((await viaProxy(proxy.port, `${s3.origin}/bucket?list-type=2&prefix=a%2Fb`, { headers: alice })).status, 200);
  t.same(verdicts, [undefined, undefined, undefined, undefined, undefined]);
  t.notMatch(proxy.logs.text, /alice\/secret|FwoGZXIv/);
});

t.test('a path starting with // is signed for the real host, not a network-path reference', async (t) => {
  const secrets = { AKIAALICE: 'alice-secret' };
  const verdicts: Array<string | undefined> = [];
  const s3 = await startUpstream((req, res, body) => {
    const problem = verifySigV4({ method: req.method!, url: req.url!, headers: req.headers, body }, secrets, { s3: true });
    verdicts.push(problem);
    res.writeHead(problem ? 403 : 200).end(problem);
  });
  const dir = configDir('store: memory\n', { s3: `hosts: ["127.0.0.1:${s3.port}"]\nupstream: http\nauth: { type: aws_sigv4, region: us-east-1, service: s3 }\n` });
  const proxy = await startProxy(dir);
  t.teardown(async () => {
    await proxy.close();
    await s3.close();
  });
  t.equal((await proxy.connect('alice', 's3', { credentials: { access_key_id: 'AKIAALICE', secret_access_key: secrets.AKIAALICE } })).status, 200);
  const alice = { 'X-Entity-Id': 'alice' };
  // An S3 key that begins with '/': the bucket path is `//bucket-key/with/slash`.
  const r = await viaProxy(proxy.port, `${s3.origin}//bucket-key/with/slash`, { method: 'PUT', headers: alice, body: 'object' });
  t.equal(r.status, 200, r.body.toString());
  t.equal(s3.seen[0]!.url, '//bucket-key/with/slash', 'the path travels as sent');
  const q = await viaProxy(proxy.port, `${s3.origin}//bucket-key/with/slash?versionId=1`, { headers: alice });
  t.equal(q.status, 200, q.body.toString());
  t.same(verdicts, [undefined, undefined]);
});
