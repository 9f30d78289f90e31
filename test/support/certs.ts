import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import forge from 'node-forge';

/**
 * A throw-away CA for test upstreams ("an internal CA" as `tls.upstream_ca` would name), made
 * with node-forge directly rather than with credproxy's own src/tls, so that a bug there
 * cannot hide itself in the tests.
 */
export interface TestCa {
  certPem: string;
  /** a server certificate for these names (DNS names or IP addresses) */
  issue(names: string[]): { key: string; cert: string };
  /** writes the CA certificate into `dir` and returns the file's path */
  write(dir: string, name?: string): string;
}

function keyPair() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
  const key = forge.pki.privateKeyFromPem(privateKey) as forge.pki.rsa.PrivateKey;
  return { pem: privateKey, key, pub: forge.pki.rsa.setPublicKey(key.n, key.e) };
}

function serial(): string {
  const b = randomBytes(12);
  b[0] = b[0]! & 0x7f;
  return b.toString('hex');
}

export function makeTestCa(commonName = 'credproxy test upstream CA'): TestCa {
  const ca = keyPair();
  const cert = forge.pki.createCertificate();
  cert.publicKey = ca.pub;
  cert.serialNumber = serial();
  cert.validity.notBefore = new Date(Date.now() - 3600_000);
  cert.validity.notAfter = new Date(Date.now() + 7 * 24 * 3600_000);
  const name = [{ name: 'commonName', value: commonName }];
  cert.setSubject(name);
  cert.setIssuer(name);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(ca.key, forge.md.sha256.create());
  const certPem = forge.pki.certificateToPem(cert);
  return {
    certPem,
    issue(names) {
      const leaf = keyPair();
      const c = forge.pki.createCertificate();
      c.publicKey = leaf.pub;
      c.serialNumber = serial();
      c.validity.notBefore = new Date(Date.now() - 3600_000);
      c.validity.notAfter = new Date(Date.now() + 24 * 3600_000);
      c.setSubject([{ name: 'commonName', value: names[0] ?? 'test' }]);
      c.setIssuer(name);
      c.setExtensions([
        { name: 'basicConstraints', cA: false },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
        { name: 'extKeyUsage', serverAuth: true },
        { name: 'subjectAltName', altNames: names.map((n) => (isIP(n) ? { type: 7, ip: n } : { type: 2, value: n })) },
        { name: 'authorityKeyIdentifier', keyIdentifier: cert.generateSubjectKeyIdentifier().getBytes() },
      ]);
      c.sign(ca.key, forge.md.sha256.create());
      return { key: leaf.pem, cert: forge.pki.certificateToPem(c) };
    },
    write(dir, file = 'upstream-ca.pem') {
      const path = join(dir, file);
      writeFileSync(path, certPem);
      return path;
    },
  };
}
