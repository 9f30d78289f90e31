import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { KeyError, readKeyText, rsaKey, signingKey } from '../../src/auth/keys.js';

// Keys through a config load (file:line errors) are in test/config/signed-keys.test.ts; these are the parser's rules.
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const rsaPem = rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const ecPem = ec.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const ed = generateKeyPairSync('ed25519');
const edJwk = { ...ed.privateKey.export({ format: 'jwk' }), kid: 'k-ed' };

const refuses = (t: Test, fn: () => unknown, message: RegExp, secret?: string) => {
  const err = t.throws(fn, message) as unknown as Error;
  t.ok(err instanceof KeyError, 'a KeyError, for the config loader to place');
  if (secret) t.notMatch(err.message, secret, 'the message never repeats the key');
};

t.test('HMAC secrets: at least the hash length, raw or as an oct JWK', async (t) => {
  t.equal(signingKey('x'.repeat(32), 'HS256').key.type, 'secret');
  refuses(t, () => signingKey('short-secret-value', 'HS256'), /at least 32 bytes .* has 18/, 'short-secret-value');
  refuses(t, () => signingKey('x'.repeat(40), 'HS384'), /at least 48 bytes/);
  const oct = { kty: 'oct', k: Buffer.alloc(64, 1).toString('base64url'), kid: 'h1' };
  t.equal(signingKey(JSON.stringify(oct), 'HS512').kid, 'h1');
  refuses(t, () => signingKey(JSON.stringify({ kty: 'oct', k: 'AAAA' }), 'HS256'), /at least 32 bytes/);
  refuses(t, () => signingKey(JSON.stringify({ private_key: rsaPem }), 'HS256'), /needs a secret, not a private key/);
});

t.test('PEM keys: the type and size must fit the algorithm', async (t) => {
  t.equal(signingKey(rsaPem, 'RS256').key.asymmetricKeyType, 'rsa');
  t.equal(signingKey(rsaPem, 'PS256').key.asymmetricKeyType, 'rsa');
  t.equal(signingKey(ecPem, 'ES256').key.asymmetricKeyType, 'ec');
  refuses(t, () => signingKey(ecPem, 'RS256'), /RS256 needs an RSA key; this is ec/);
  refuses(t, () => signingKey(ecPem, 'ES384'), /ES384 needs an EC key on secp384r1; this is ec on prime256v1/);
  refuses(t, () => signingKey(rsaPem, 'EdDSA'), /Ed25519 key/);
  const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  refuses(t, () => signingKey(small, 'RS256'), /at least 2048 bits; this one has 1024/);
});

t.test('PEM from an environment variable with literal \\n is undone; public keys and garbage are refused', async (t) => {
  t.equal(signingKey(rsaPem.trim().replace(/\n/g, '\\n'), 'RS256').key.asymmetricKeyType, 'rsa');
  const pub = rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  refuses(t, () => signingKey(pub, 'RS256'), /public key or certificate; signing needs the private key/);
  refuses(t, () => signingKey('not a key', 'RS256'), /not a PEM private key, a JWK \(JSON\), or file:path/);
  refuses(t, () => signingKey('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----', 'RS256'), /does not parse/);
  refuses(t, () => signingKey('  ', 'RS256'), /the key is empty/);
});

t.test('JSON: a private JWK (alg checked, kid kept) or a service-account file', async (t) => {
  t.equal(signingKey(JSON.stringify(edJwk), 'EdDSA').kid, 'k-ed');
  t.equal(signingKey(JSON.stringify({ ...edJwk, alg: 'Ed25519' }), 'EdDSA').key.asymmetricKeyType, 'ed25519');
  refuses(t, () => signingKey(JSON.stringify({ ...edJwk, alg: 'ES256' }), 'EdDSA'), /the JWK is for ES256, not EdDSA/);
  const { d: _d, ...publicJwk } = edJwk;
  refuses(t, () => signingKey(JSON.stringify(publicJwk), 'EdDSA'), /public key; signing needs the private key/);
  const sa = signingKey(JSON.stringify({ type: 'service_account', private_key: rsaPem, private_key_id: 'sa-1' }), 'RS256');
  t.equal(sa.kid, 'sa-1');
  refuses(t, () => signingKey('{ nope', 'RS256'), /looks like JSON but does not parse/);
  refuses(t, () => signingKey('{"a":1}', 'RS256'), /neither a JWK .* nor a key file/);
});

t.test('readKeyText: file: reads the file without its trailing newline; a missing one is a KeyError naming the path', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'credproxy-keys-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'key.pem');
  writeFileSync(path, `${rsaPem.trim()}\n`);
  t.equal(readKeyText(`file:${path}`), rsaPem.trim());
  t.equal(readKeyText('inline'), 'inline');
  refuses(t, () => readKeyText(`file:${join(dir, 'missing.pem')}`), /cannot read .*missing\.pem \(ENOENT\)/);
});

t.test('rsaKey (OAuth 1.0a RSA-SHA1): RSA only', async (t) => {
  t.equal(rsaKey(`\n${rsaPem}\n`).asymmetricKeyType, 'rsa');
  refuses(t, () => rsaKey(ecPem), /RSA-SHA1 needs an RSA key; this is ec/);
});
