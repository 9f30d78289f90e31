import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, linkSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import forge from 'node-forge';
import { makePrivateDir, PRIVATE_FILE, tightenIfExists } from '../store/private-files.js';

/** File names inside `tls.ca_dir`; `.crt` because Debian's update-ca-certificates only picks up that extension. */
export const CA_CERT_FILE = 'ca.crt';
export const CA_KEY_FILE = 'ca.key';

export interface CertificateAuthority {
  certPath: string;
  keyPath: string;
  certPem: string;
  cert: forge.pki.Certificate;
  key: forge.pki.rsa.PrivateKey;
  /** the key file's PEM, for node's crypto (leaf signing, src/tls/leaf-signer.ts) */
  keyPem: string;
  /** true when this call created the CA */
  created: boolean;
}

const CA_YEARS = 10;

/**
 * A positive serial number of 126 random bits (RFC 5280 wants positive and unique). The top
 * bits are fixed at 01: a first byte of 0x00 would make the DER integer non-minimal ("illegal
 * padding"), which OpenSSL refuses, and did for about one leaf in 512.
 */
export function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x3f) | 0x40;
  return bytes.toString('hex');
}

/** RSA 2048 from node's native generator: forge's pure-JS one would take seconds. */
export function newRsaKey(): { privateKey: forge.pki.rsa.PrivateKey; publicKey: forge.pki.rsa.PublicKey; pem: string } {
  const { privateKey: pem } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
  const privateKey = forge.pki.privateKeyFromPem(pem) as forge.pki.rsa.PrivateKey;
  return { privateKey, publicKey: forge.pki.rsa.setPublicKey(privateKey.n, privateKey.e), pem };
}

function issueCaCertificate(key: forge.pki.rsa.PrivateKey): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.rsa.setPublicKey(key.n, key.e);
  cert.serialNumber = randomSerial();
  const now = Date.now();
  cert.validity.notBefore = new Date(now - 24 * 3600 * 1000);
  cert.validity.notAfter = new Date(now + CA_YEARS * 365 * 24 * 3600 * 1000);
  // A per-install name, so that a user who trusts several credproxy CAs can tell them apart.
  const attrs = [
    { name: 'commonName', value: `credproxy local CA (${hostname().slice(0, 24)} ${randomBytes(3).toString('hex')})` },
    { name: 'organizationName', value: 'credproxy' },
  ];
  cert.setSubject(attrs);
  cert.setIssuer(attrs);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(key, forge.md.sha256.create());
  return cert;
}

/**
 * Creates `path` with `text` unless it exists, all or nothing: written under a temporary name
 * and then hard-linked into place, which fails when another process got there first (two
 * instances starting at once on a shared ca_dir). Returns false when the file already existed.
 */
function createExclusively(path: string, text: string, mode: number): boolean {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(tmp, text, { mode, flag: 'wx' });
  try {
    linkSync(tmp, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    unlinkSync(tmp);
  }
}

/**
 * The local CA that signs leaf certificates for intercepted hosts. Created on first use in
 * `dir` (relative to the working directory); never regenerated while its key exists, since
 * every client that trusts it would break. A key without its certificate (a crash between
 * the two writes) gets a new certificate for the same key.
 */
export function loadOrCreateCa(dir: string): CertificateAuthority {
  const abs = resolve(dir);
  const certPath = join(abs, CA_CERT_FILE);
  const keyPath = join(abs, CA_KEY_FILE);
  makePrivateDir(abs);
  const hasKey = existsSync(keyPath);
  const hasCert = existsSync(certPath);
  if (hasCert && !hasKey) {
    throw new Error(`${certPath} exists but its key ${keyPath} is missing: restore the key, or delete the certificate to create a new CA (clients must then trust the new one)`);
  }
  let created = false;
  if (!hasKey) created = createExclusively(keyPath, newRsaKey().pem, 0o600);
  let key: forge.pki.rsa.PrivateKey;
  const keyPem = readFileSync(keyPath, 'utf8');
  try {
    key = forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey;
  } catch (err) {
    throw new Error(`${keyPath} is not a PEM RSA private key (${(err as Error).message})`);
  }
  if (!hasCert && createExclusively(certPath, forge.pki.certificateToPem(issueCaCertificate(key)), PRIVATE_FILE)) created = true;
  // A CA an older credproxy wrote with its certificate 0644.
  tightenIfExists(certPath);
  let cert: forge.pki.Certificate;
  try {
    cert = forge.pki.certificateFromPem(readFileSync(certPath, 'utf8'));
  } catch (err) {
    throw new Error(`${certPath} is not a PEM certificate (${(err as Error).message})`);
  }
  const pub = cert.publicKey as forge.pki.rsa.PublicKey;
  if (pub.n.compareTo(key.n) !== 0) throw new Error(`${certPath} does not belong to the key in ${keyPath}`);
  return { certPath, keyPath, certPem: forge.pki.certificateToPem(cert), cert, key, keyPem, created };
}
