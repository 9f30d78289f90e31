// @peculiar/x509 resolves its algorithm registry through tsyringe, which needs the Reflect
// metadata API; it must be loaded before the library's module runs, so it is imported first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createPrivateKey, generateKeyPairSync, webcrypto, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { randomSerial, type CertificateAuthority } from './ca.js';

// Node's WebCrypto: its sign() runs on libuv's thread pool, so the event loop only builds the
// DER around the signature (well under a millisecond) instead of computing an RSA signature in JS.
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

/** What WebCrypto needs to sign with the CA key, by the key's type. */
function caAlgorithm(key: KeyObject): { importAlg: webcrypto.RsaHashedImportParams | webcrypto.EcKeyImportParams; signAlg: webcrypto.Algorithm | webcrypto.EcdsaParams } {
  if (key.asymmetricKeyType === 'rsa') {
    const alg = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
    return { importAlg: alg, signAlg: alg };
  }
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    const namedCurve = curve === 'prime256v1' ? 'P-256' : curve === 'secp384r1' ? 'P-384' : curve === 'secp521r1' ? 'P-521' : undefined;
    if (namedCurve) return { importAlg: { name: 'ECDSA', namedCurve }, signAlg: { name: 'ECDSA', hash: namedCurve === 'P-256' ? 'SHA-256' : 'SHA-384' } };
  }
  throw new Error(`the CA key is ${key.asymmetricKeyType ?? 'of an unknown type'}; leaf certificates can be signed with an RSA or EC (P-256/384/521) CA key`);
}

export interface LeafSigner {
  /** the PEM private key of every leaf (ECDSA P-256): one per process, never written anywhere */
  keyPem: string;
  /** A PEM certificate for `name` (a DNS name, `*.` wildcard, or IP address), signed by the CA. */
  sign(name: string, notBefore: Date, notAfter: Date): Promise<string>;
}

/**
 * Signs leaf certificates with the local CA through node's crypto. All leaves share one
 * ECDSA P-256 key pair made here (a P-256 key takes well under a millisecond to make, and a
 * leaf only needs a key the CA vouches for); what differs per leaf is the name and serial.
 * The CA files stay as they are: an RSA CA made by an earlier version keeps working.
 */
export async function createLeafSigner(ca: CertificateAuthority): Promise<LeafSigner> {
  const caKey = createPrivateKey(ca.keyPem);
  const { importAlg, signAlg } = caAlgorithm(caKey);
  const signingKey = await webcrypto.subtle.importKey('pkcs8', caKey.export({ type: 'pkcs8', format: 'der' }), importAlg, false, ['sign']);
  const leaf = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const publicKey = new x509.PublicKey(leaf.publicKey.export({ type: 'spki', format: 'der' }));
  const caCert = new x509.X509Certificate(ca.certPem);
  // The issuer is the CA's subject byte for byte, so that chain building never depends on
  // how a library re-encodes a name (forge wrote the CA's as PrintableString).
  const issuer = new x509.Name(caCert.subjectName.toArrayBuffer());
  const authorityKeyId = await x509.AuthorityKeyIdentifierExtension.create(caCert);
  const subjectKeyId = await x509.SubjectKeyIdentifierExtension.create(publicKey);
  // The same for every leaf, so encoded once: building extensions is most of the library's per-leaf work.
  const common = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    // ECDSA keys sign the handshake; there is no key encipherment as with RSA.
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
    subjectKeyId,
    authorityKeyId,
  ];
  return {
    keyPem: leaf.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    async sign(name, notBefore, notAfter) {
      const ip = isIP(name) !== 0;
      const cert = await x509.X509CertificateGenerator.create({
        serialNumber: randomSerial(),
        // CN is limited to 64 characters; SAN is what clients check anyway.
        subject: name.length <= 64 ? [{ CN: [name] }] : [{ O: ['credproxy'] }],
        issuer,
        notBefore,
        notAfter,
        publicKey,
        signingKey,
        signingAlgorithm: signAlg,
        extensions: [...common, new x509.SubjectAlternativeNameExtension([{ type: ip ? 'ip' : 'dns', value: name }])],
      });
      return cert.toString('pem');
    },
  };
}
