import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { generateKeyPairSync, webcrypto, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import t from 'tap';
import { loadOrCreateCa, type CertificateAuthority } from '../../src/tls/ca.js';
import { createLeafSigner } from '../../src/tls/leaf-signer.js';

// Leaf lifetimes, caching and names through LeafCertificates are in test/tls/leaf.test.ts;
// this is the signer on each kind of CA key, and a real handshake with what it signs.
const dir = mkdtempSync(join(tmpdir(), 'credproxy-leaf-signer-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const rsaCa = loadOrCreateCa(join(dir, 'ca'));

/** A CA on an EC P-384 key, as an operator may bring one (tls.ca_dir). */
async function ecCa(): Promise<CertificateAuthority> {
  x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
  const alg = { name: 'ECDSA', namedCurve: 'P-384', hash: 'SHA-384' };
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=Test EC CA',
    notBefore: new Date(Date.now() - 3_600_000),
    notAfter: new Date(Date.now() + 86_400_000),
    keys,
    signingAlgorithm: alg,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)],
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const keyPem = `-----BEGIN PRIVATE KEY-----\n${pkcs8.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END PRIVATE KEY-----\n`;
  return { certPem: cert.toString('pem'), keyPem } as CertificateAuthority;
}

async function handshake(certPem: string, keyPem: string, caPem: string, servername: string): Promise<boolean> {
  const server = tls.createServer({ cert: certPem, key: keyPem }, (s) => s.end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    return await new Promise<boolean>((resolve) => {
      const c = tls.connect({ port: (server.address() as { port: number }).port, host: '127.0.0.1', servername: servername === '127.0.0.1' ? undefined : servername, ca: caPem }, () => {
        c.end();
        resolve(c.authorized);
      });
      c.on('error', () => resolve(false));
    });
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
}

t.test('leaves signed by an RSA CA and an EC CA chain to it and complete a TLS handshake', async (t) => {
  for (const [kind, ca] of [['RSA', rsaCa], ['EC P-384', await ecCa()]] as const) {
    const signer = await createLeafSigner(ca);
    const caCert = new X509Certificate(ca.certPem);
    const now = Date.now();
    const pem = await signer.sign('api.example.com', new Date(now - 60_000), new Date(now + 3_600_000));
    const leaf = new X509Certificate(pem);
    t.ok(leaf.verify(caCert.publicKey), `${kind}: signed by the CA`);
    t.ok(leaf.checkIssued(caCert), `${kind}: issued by it (issuer is the CA subject byte for byte)`);
    t.equal(leaf.subjectAltName, 'DNS:api.example.com');
    t.equal(leaf.publicKey.asymmetricKeyType, 'ec', 'every leaf is ECDSA P-256');
    t.ok(await handshake(pem, signer.keyPem, ca.certPem, 'api.example.com'), `${kind}: a client trusting the CA accepts it`);
    const ip = await signer.sign('127.0.0.1', new Date(now - 60_000), new Date(now + 3_600_000));
    t.equal(new X509Certificate(ip).subjectAltName, 'IP Address:127.0.0.1');
    t.ok(await handshake(ip, signer.keyPem, ca.certPem, '127.0.0.1'), `${kind}: an IP name too`);
  }
});

t.test('each leaf has its own serial; one key for all; a long name goes in SAN only', async (t) => {
  const signer = await createLeafSigner(rsaCa);
  const d = [new Date(Date.now() - 60_000), new Date(Date.now() + 60_000)] as const;
  const a = new X509Certificate(await signer.sign('a.test', ...d));
  const b = new X509Certificate(await signer.sign('a.test', ...d));
  t.not(a.serialNumber, b.serialNumber);
  t.ok(a.publicKey.equals(b.publicKey));
  const long = `${'x'.repeat(70)}.test`;
  const l = new X509Certificate(await signer.sign(long, ...d));
  t.equal(l.subjectAltName, `DNS:${long}`);
  t.notMatch(l.subject, long, 'CN is limited to 64 characters');
});

t.test('a CA key that cannot sign leaves is a clear error at start', async (t) => {
  const ed = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  await t.rejects(createLeafSigner({ ...rsaCa, keyPem: ed }), /the CA key is ed25519; leaf certificates can be signed with an RSA or EC \(P-256\/384\/521\) CA key/);
  const otherRsa = loadOrCreateCa(join(dir, 'other')).keyPem;
  await t.rejects(createLeafSigner({ ...rsaCa, keyPem: otherRsa }), /the CA key does not verify a certificate it signed/, 'a key that is not the certificate’s');
});
