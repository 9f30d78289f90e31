import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';

/** A freshly generated key for a JWS algorithm: what credproxy signs with and what a verifier checks with. */
export interface TestKey {
  /** PEM (PKCS#8) for asymmetric algorithms, the secret itself for HS* */
  privateText: string;
  /** the private key as a JWK (JSON text) */
  privateJwk: string;
  /** what jose's jwtVerify takes */
  verifyKey: KeyObject | Uint8Array;
}

export function testKey(alg: string): TestKey {
  if (alg.startsWith('HS')) {
    const secret = randomBytes(Number(alg.slice(2)) / 8).toString('base64url');
    const bytes = new TextEncoder().encode(secret);
    return { privateText: secret, privateJwk: JSON.stringify({ kty: 'oct', k: Buffer.from(bytes).toString('base64url') }), verifyKey: bytes };
  }
  const pair =
    alg.startsWith('RS') || alg.startsWith('PS')
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : alg.startsWith('ES')
        ? generateKeyPairSync('ec', { namedCurve: { ES256: 'P-256', ES384: 'P-384', ES512: 'P-521' }[alg] ?? 'P-256' })
        : generateKeyPairSync('ed25519');
  return {
    privateText: pair.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    privateJwk: JSON.stringify(pair.privateKey.export({ format: 'jwk' })),
    verifyKey: pair.publicKey,
  };
}
