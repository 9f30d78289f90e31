import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { loadConfig } from '../support/config.js';
import { problemsOf } from '../support/config.js';
import { configDir } from '../support/servers.js';
import { testKey } from '../support/keys.js';

const pem = (k: { privateKey: { export(o: object): string | Buffer } }) => k.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
const smallRsa = pem(generateKeyPairSync('rsa', { modulusLength: 1024 }));
const ed = testKey('EdDSA').privateText;
const rsaPublic = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'pem', type: 'spki' }).toString();


t.test('bad keys and templates in signing schemes are config errors at their file and line', async (t) => {
  const dir = configDir('store: memory\n', {
    small: 'hosts: [a.example]\nauth:\n  type: jwt\n  algorithm: RS256\n  private_key: ${SMALL}\n',
    curve: 'hosts: [b.example]\nauth:\n  type: jwt\n  algorithm: ES256\n  private_key: ${ED}\n',
    short: 'hosts: [c.example]\nauth:\n  type: jwt\n  algorithm: HS512\n  private_key: too-short-a-secret\n',
    missing: 'hosts: [d.example]\nauth:\n  type: jwt\n  algorithm: EdDSA\n  private_key: file:./no/such/key.pem\n',
    public: 'hosts: [e.example]\nauth:\n  type: jwt\n  algorithm: RS256\n  private_key: ${PUB}\n',
    garbage: 'hosts: [f.example]\nauth:\n  type: jwt\n  algorithm: EdDSA\n  private_key: "-----BEGIN PRIVATE KEY-----\\nnot base64\\n-----END PRIVATE KEY-----"\n',
    claims: 'hosts: [g.example]\nauth:\n  type: jwt\n  algorithm: EdDSA\n  private_key: ${ED}\n  claims:\n    sub: "{{user}}"\n    exp: "1"\n',
    jwk: 'hosts: [h.example]\nauth:\n  type: jwt\n  algorithm: ES256\n  private_key: \'{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpJW6nd8PGtWWYRn1mLhI"}\'\n',
    oauth1: 'hosts: [i.example]\nauth:\n  type: oauth1\n  consumer_key: ck\n  signature_method: RSA-SHA1\n  consumer_secret: not-a-key\n',
    oauth1b: 'hosts: [j.example]\nauth:\n  type: oauth1\n  consumer_key: ck\n',
    get: 'hosts: [m.example]\nauth:\n  type: jwt_bearer\n  algorithm: EdDSA\n  private_key: ${ED}\n  token_url: https://t.example/token\n  token_request:\n    method: GET\n',
    skew: 'hosts: [l.example]\nauth:\n  type: jwt\n  algorithm: EdDSA\n  private_key: ${ED}\n  ttl: 60\n  clock_skew: 60\n',
    exchange: 'hosts: [k.example]\nauth:\n  type: jwt_bearer\n  algorithm: EdDSA\n  private_key: ${ED}\n  token_url: https://t.example/{{tenant}}/token\n  token_response: { access_token: token, lifetime: ttl }\n',
  });
  const problems = problemsOf(dir, { SMALL: smallRsa, ED: ed, PUB: rsaPublic });
  const has = (re: RegExp) => t.ok(problems.some((p) => re.test(p)), `${re}\n${problems.join('\n')}`);
  has(/^integrations\/small\.yaml:5: private_key: RS256 needs an RSA key of at least 2048 bits; this one has 1024$/);
  has(/^integrations\/curve\.yaml:5: private_key: ES256 needs an EC key on prime256v1; this is ed25519$/);
  has(/^integrations\/short\.yaml:5: private_key: an HS512 secret must be at least 64 bytes \(RFC 7518 §3\.2\); this one has 18$/);
  has(/^integrations\/missing\.yaml:5: private_key: cannot read .*no\/such\/key\.pem \(ENOENT\)$/);
  has(/^integrations\/public\.yaml:5: private_key: this is a public key or certificate; signing needs the private key$/);
  has(/^integrations\/garbage\.yaml:5: private_key: the PEM private key does not parse/);
  has(/^integrations\/claims\.yaml:7: claims\.sub: \{\{user\}\} is neither entity, a param nor a connection field/);
  has(/^integrations\/claims\.yaml:8: claims\.exp: credproxy sets exp itself/);
  has(/^integrations\/jwk\.yaml:5: private_key: the JWK is a public key; signing needs the private key \(with "d"\)$/);
  has(/^integrations\/oauth1\.yaml:6: consumer_secret: not a PEM private key/);
  has(/^integrations\/oauth1b\.yaml:\d+: consumer_secret: is required for HMAC-SHA1$/);
  has(/^integrations\/exchange\.yaml:6: token_url: \{\{tenant\}\} is neither entity, a param nor a connection field$/);
  has(/^integrations\/exchange\.yaml:7: token_response\.lifetime: unknown; expected access_token, expires_in, expires_at$/);
  has(/^integrations\/skew\.yaml:7: clock_skew: 60 s would make every token expire before it is used \(ttl is 60 s\)$/);
  has(/^integrations\/get\.yaml:8: token_request\.method: GET cannot carry the form body/);
  t.equal(problems.length, 15, 'one problem each, nothing else');
  t.notMatch(problems.join('\n'), /BEGIN|MII/, 'no key material in the messages');
});

t.test('credproxy validate prints file:line for a bad key and exits 1', async (t) => {
  const dir = configDir('store: memory\n', {
    billing: 'hosts: [billing.example]\nauth:\n  type: jwt\n  algorithm: ES384\n  key_id: k1\n  private_key: ${BILLING_KEY}\n',
  });
  const run = promisify(execFile);
  const cli = join(import.meta.dirname, '../../src/cli.ts');
  const env = { ...process.env, BILLING_KEY: ed };
  const err = await run(process.execPath, [...process.execArgv, cli, 'validate', '--config', dir], { env }).then(
    () => undefined,
    (e: { code: number; stderr: string }) => e,
  );
  t.equal(err?.code, 1);
  t.equal(err?.stderr.trim(), `${join(dir, 'integrations', 'billing.yaml')}:6: private_key: ES384 needs an EC key on secp384r1; this is ed25519`);
});

t.test('good keys of every kind load', async (t) => {
  const dir = configDir('store: memory\n', {
    pem: 'hosts: [a.example]\nauth: { type: jwt, algorithm: PS384, private_key: "${RSA}" }\n',
    escaped: 'hosts: [b.example]\nauth: { type: jwt, algorithm: PS384, private_key: "${RSA_ESCAPED}" }\n',
    sa: 'hosts: [c.example]\nauth: { type: jwt_bearer, algorithm: RS256, private_key: \'${SA_JSON}\', token_url: "https://oauth2.googleapis.com/token" }\n',
    oct: 'hosts: [d.example]\nauth: { type: jwt, algorithm: HS256, private_key: \'${OCT}\' }\n',
    es512: 'hosts: [e.example]\nauth: { type: jwt, algorithm: ES512, private_key: "${ES512}" }\n',
  });
  const rsa = testKey('RS256').privateText;
  const config = loadConfig(dir, {
    env: {
      RSA: rsa,
      RSA_ESCAPED: rsa.replace(/\n/g, '\\n'),
      SA_JSON: JSON.stringify({ type: 'service_account', private_key_id: 'abc', private_key: rsa, client_email: 'x@y' }),
      OCT: testKey('HS256').privateJwk,
      ES512: testKey('ES512').privateText,
    },
  });
  t.equal(config.integrations.size, 5);
  t.equal(config.integrations.get('sa')!.schemes[0]!.traits.needsConnection, false, 'key in the YAML: no stored connection needed');
});

t.test('file: keys relative to the config folder, whatever the working directory', async (t) => {
  const dir = configDir('store: memory\n', { rel: 'hosts: [r.example]\nauth:\n  type: jwt\n  algorithm: EdDSA\n  private_key: file:./keys/signing.pem\n' });
  mkdirSync(join(dir, 'keys'));
  writeFileSync(join(dir, 'keys', 'signing.pem'), ed);
  t.equal(loadConfig(dir, { env: {} }).integrations.size, 1, `read ${join(dir, 'keys', 'signing.pem')} from ${process.cwd()}`);
});
