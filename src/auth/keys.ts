import { createPrivateKey, createSecretKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

/**
 * Signing keys for the jwt schemes and RSA-SHA1 OAuth 1.0a, parsed synchronously with
 * node:crypto so that a bad key is a config error when the config loads (jose's importers
 * are async; jose signs with the resulting KeyObject just as well).
 */
export class KeyError extends Error {}

/** A parsed key and the key id it carries (a JWK's `kid`, a service-account file's `private_key_id`). */
export interface SigningKey {
  key: KeyObject;
  kid?: string;
}

/** `file:path` reads the file (config/load.ts has made a relative path absolute, against the config folder); one trailing newline is not part of the value. */
export function readKeyText(value: string): string {
  if (!value.startsWith('file:')) return value;
  const path = resolve(value.slice(5));
  try {
    return readFileSync(path, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    throw new KeyError(`cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

/**
 * What the `file:` references among `values` read now, for a definition's fingerprint: a key
 * file rotated in place makes a new definition (and so a new scheme) on the next reload. A
 * file that cannot be read is reported by the key's own check; here it is simply left out.
 */
export function keyFiles(...values: Array<string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    if (v === undefined || !v.startsWith('file:')) continue;
    try {
      out[v] = readKeyText(v);
    } catch {
      // KeyError: the scheme's check says why, at the key's line.
    }
  }
  return out;
}

const HMAC_BYTES: Record<string, number> = { HS256: 32, HS384: 48, HS512: 64 };
const CURVES: Record<string, string> = { ES256: 'prime256v1', ES384: 'secp384r1', ES512: 'secp521r1' };

/**
 * Parses a key for a JWS algorithm: a secret for HS*; otherwise a PEM private key (PKCS#8,
 * or PKCS#1/SEC1), a private JWK, or a JSON object with a `private_key` PEM field (a Google
 * service-account key file). Throws KeyError with a message that never repeats the key.
 */
export function signingKey(text: string, alg: string): SigningKey {
  const trimmed = text.trim();
  if (trimmed === '') throw new KeyError('the key is empty');
  const hmacBytes = HMAC_BYTES[alg];
  if (trimmed.startsWith('{')) return fromJson(trimmed, alg, hmacBytes);
  if (hmacBytes !== undefined) {
    // RFC 7518 §3.2: an HMAC key must be at least as long as the hash output.
    const secret = Buffer.from(text, 'utf8');
    if (secret.length < hmacBytes) throw new KeyError(`an ${alg} secret must be at least ${hmacBytes} bytes (RFC 7518 §3.2); this one has ${secret.length}`);
    return { key: createSecretKey(secret) };
  }
  return { key: checkAsymmetric(pemKey(trimmed), alg) };
}

/** A PEM private key; environment variables often carry PEM with literal `\n`, which is undone here. */
export function pemKey(text: string): KeyObject {
  const pem = !text.includes('\n') && text.includes('\\n') ? text.replace(/\\n/g, '\n') : text;
  if (/-----BEGIN (RSA |EC )?PUBLIC KEY-----|-----BEGIN CERTIFICATE-----/.test(pem)) {
    throw new KeyError('this is a public key or certificate; signing needs the private key');
  }
  if (!pem.includes('-----BEGIN')) throw new KeyError('not a PEM private key, a JWK (JSON), or file:path');
  try {
    return createPrivateKey(pem);
  } catch (err) {
    throw new KeyError(`the PEM private key does not parse (${(err as Error).message.split('\n')[0]})`);
  }
}

function fromJson(text: string, alg: string, hmacBytes: number | undefined): SigningKey {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new KeyError('the key looks like JSON but does not parse');
  }
  if (typeof json.private_key === 'string') {
    if (hmacBytes !== undefined) throw new KeyError(`${alg} needs a secret, not a private key`);
    const kid = typeof json.private_key_id === 'string' ? json.private_key_id : undefined;
    return { key: checkAsymmetric(pemKey(json.private_key), alg), kid };
  }
  if (typeof json.kty !== 'string') throw new KeyError('the JSON is neither a JWK (no "kty") nor a key file with "private_key"');
  if (typeof json.alg === 'string' && json.alg !== alg && !(alg === 'EdDSA' && json.alg === 'Ed25519')) {
    throw new KeyError(`the JWK is for ${json.alg}, not ${alg}`);
  }
  const kid = typeof json.kid === 'string' ? json.kid : undefined;
  if (hmacBytes !== undefined) {
    if (json.kty !== 'oct' || typeof json.k !== 'string') throw new KeyError(`${alg} needs a secret or an "oct" JWK`);
    const secret = Buffer.from(json.k, 'base64url');
    if (secret.length < hmacBytes) throw new KeyError(`an ${alg} secret must be at least ${hmacBytes} bytes (RFC 7518 §3.2); this one has ${secret.length}`);
    return { key: createSecretKey(secret), kid };
  }
  if (json.d === undefined) throw new KeyError('the JWK is a public key; signing needs the private key (with "d")');
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: json as JsonWebKey, format: 'jwk' });
  } catch (err) {
    throw new KeyError(`the JWK does not parse (${(err as Error).message.split('\n')[0]})`);
  }
  return { key: checkAsymmetric(key, alg), kid };
}

/** The key type must fit the algorithm, or jose would fail on the first request instead of at load. */
function checkAsymmetric(key: KeyObject, alg: string): KeyObject {
  const type = key.asymmetricKeyType;
  const family = alg.slice(0, 2);
  if (family === 'RS' || family === 'PS') {
    if (type !== 'rsa' && !(family === 'PS' && type === 'rsa-pss')) throw new KeyError(`${alg} needs an RSA key; this is ${type}`);
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < 2048) throw new KeyError(`${alg} needs an RSA key of at least 2048 bits; this one has ${bits}`);
  } else if (family === 'ES') {
    const curve = CURVES[alg];
    const actual = key.asymmetricKeyDetails?.namedCurve;
    if (type !== 'ec' || actual !== curve) throw new KeyError(`${alg} needs an EC key on ${curve}; this is ${type}${actual ? ` on ${actual}` : ''}`);
  } else if (alg === 'EdDSA' || alg === 'Ed25519') {
    if (type !== 'ed25519') throw new KeyError(`${alg} needs an Ed25519 key; this is ${type}`);
  } else if (alg === 'RSA-SHA1') {
    if (type !== 'rsa') throw new KeyError(`RSA-SHA1 needs an RSA key; this is ${type}`);
  }
  return key;
}

/** An RSA private key for OAuth 1.0a RSA-SHA1 (PEM or file:path). */
export function rsaKey(text: string): KeyObject {
  return checkAsymmetric(pemKey(text.trim()), 'RSA-SHA1');
}
