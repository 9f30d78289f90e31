// @peculiar/x509 resolves its algorithm registry through tsyringe, which needs the Reflect
// metadata API; it must be loaded before the library's module runs, so it is imported first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import * as asn1 from '@peculiar/asn1-x509';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import { createPrivateKey, generateKeyPairSync, sign as signData, webcrypto, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { randomSerial, type CertificateAuthority } from './ca.js';

// Node's WebCrypto, for what @peculiar/x509 computes once at start (key identifiers, the template leaf).
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
  const common = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    // ECDSA keys sign the handshake; there is no key encipherment as with RSA.
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
    await x509.SubjectKeyIdentifierExtension.create(publicKey),
    await x509.AuthorityKeyIdentifierExtension.create(caCert),
  ];
  // One leaf made by @peculiar/x509 (and checked against the CA) is the template: its parsed
  // parts (issuer, key, shared extensions, signature algorithm) are reused as they are, and
  // each leaf only adds its serial, dates, name and subjectAltName. Building through the
  // generator re-parses all of those for every leaf, several times the cost of the rest.
  const template = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: [{ CN: ['credproxy template'] }],
    issuer,
    publicKey,
    signingKey,
    signingAlgorithm: signAlg,
    extensions: common,
  });
  if (!(await template.verify({ publicKey: caCert.publicKey, signatureOnly: true }))) throw new Error('the CA key does not verify a certificate it signed');
  const parsed = AsnConvert.parse(template.rawData, asn1.Certificate);
  const shared = parsed.tbsCertificate;
  const algorithm = parsed.signatureAlgorithm;
  const hash = ((signAlg as { hash?: string }).hash ?? 'SHA-256').replace('-', '').toLowerCase();
  return {
    keyPem: leaf.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    async sign(name, notBefore, notAfter) {
      const ip = isIP(name) !== 0;
      const san = new asn1.SubjectAlternativeName([new asn1.GeneralName(ip ? { iPAddress: name } : { dNSName: name })]);
      const tbs = new asn1.TBSCertificate({
        version: asn1.Version.v3,
        serialNumber: new Uint8Array(Buffer.from(randomSerial(), 'hex')).buffer,
        signature: algorithm,
        issuer: shared.issuer,
        validity: new asn1.Validity({ notBefore, notAfter }),
        // CN is limited to 64 characters; SAN is what clients check anyway.
        subject: new asn1.Name([
          new asn1.RelativeDistinguishedName([
            name.length <= 64
              ? new asn1.AttributeTypeAndValue({ type: '2.5.4.3', value: new asn1.AttributeValue({ utf8String: name }) })
              : new asn1.AttributeTypeAndValue({ type: '2.5.4.10', value: new asn1.AttributeValue({ utf8String: 'credproxy' }) }),
          ]),
        ]),
        subjectPublicKeyInfo: shared.subjectPublicKeyInfo,
        extensions: new asn1.Extensions([
          ...(shared.extensions ?? []),
          new asn1.Extension({ extnID: asn1.id_ce_subjectAltName, critical: false, extnValue: new OctetString(AsnConvert.serialize(san)) }),
        ]),
      });
      const tbsDer = AsnConvert.serialize(tbs);
      // crypto.sign with a callback runs on libuv's thread pool (and gives ECDSA in DER, as X.509 wants).
      const signature = await new Promise<Buffer>((resolve, reject) => signData(hash, Buffer.from(tbsDer), caKey, (err, sig) => (err ? reject(err) : resolve(sig))));
      const der = AsnConvert.serialize(new asn1.Certificate({ tbsCertificate: tbs, signatureAlgorithm: algorithm, signatureValue: new Uint8Array(signature).buffer }));
      const b64 = Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n');
      return `-----BEGIN CERTIFICATE-----\n${b64}${b64.length % 64 === 0 ? '' : '\n'}-----END CERTIFICATE-----\n`;
    },
  };
}
