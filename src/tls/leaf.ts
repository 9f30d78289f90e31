import { isIP } from 'node:net';
import { createSecureContext, type SecureContext } from 'node:tls';
import forge from 'node-forge';
import { newRsaKey, randomSerial, type CertificateAuthority } from './ca.js';

const HOUR = 3600 * 1000;
const DAY = 24 * HOUR;

export interface LeafOptions {
  /** how long a leaf certificate is valid; short, so a leaked leaf key is worth little */
  validityMs?: number;
  /** hosts kept at once; `*.example.com` integrations could otherwise grow the cache without end */
  maxHosts?: number;
}

interface Entry {
  context: SecureContext;
  renewAt: number;
}

/**
 * Leaf certificates for intercepted hosts, signed by the local CA: one per host, made on the
 * first tunnel to it and reused by every later connection until shortly before it expires.
 * All leaves share one key pair made at start (signing a certificate is cheap, generating a
 * key is not); the key never leaves the process.
 */
export class LeafCertificates {
  private readonly cache = new Map<string, Entry>();
  private readonly leafKey = newRsaKey();
  private readonly validityMs: number;
  private readonly maxHosts: number;
  private readonly authorityKeyId: string;
  /** certificates made so far (for tests and the benchmark: once per host, not per connection) */
  issued = 0;

  constructor(private readonly ca: CertificateAuthority, opts: LeafOptions = {}) {
    this.validityMs = opts.validityMs ?? 7 * DAY;
    this.maxHosts = opts.maxHosts ?? 1000;
    this.authorityKeyId = ca.cert.generateSubjectKeyIdentifier().getBytes();
  }

  /** The TLS context presenting a certificate for `host` (a DNS name, or an IP address without brackets). */
  contextFor(host: string, now = Date.now()): SecureContext {
    const hit = this.cache.get(host);
    if (hit && hit.renewAt > now) {
      // Re-insert so that eviction drops the least recently used host first.
      this.cache.delete(host);
      this.cache.set(host, hit);
      return hit.context;
    }
    const { pem, notAfter } = this.issue(host, now);
    const context = createSecureContext({ key: this.leafKey.pem, cert: pem });
    const validFor = notAfter - now;
    this.cache.delete(host);
    this.cache.set(host, { context, renewAt: now + Math.floor(validFor * 0.8) });
    while (this.cache.size > this.maxHosts) this.cache.delete(this.cache.keys().next().value!);
    return context;
  }

  /** A PEM leaf for `host`; public for tests that inspect the certificate itself. */
  issue(host: string, now = Date.now()): { pem: string; notAfter: number } {
    const cert = forge.pki.createCertificate();
    cert.publicKey = this.leafKey.publicKey;
    cert.serialNumber = randomSerial();
    const caNotAfter = this.ca.cert.validity.notAfter.getTime();
    const notAfter = Math.min(now + this.validityMs, caNotAfter);
    cert.validity.notBefore = new Date(now - HOUR); // tolerate clients whose clock is a little behind
    cert.validity.notAfter = new Date(notAfter);
    // CN is limited to 64 characters; SAN is what clients check anyway.
    cert.setSubject(host.length <= 64 ? [{ name: 'commonName', value: host }] : [{ name: 'organizationName', value: 'credproxy' }]);
    cert.setIssuer(this.ca.cert.subject.attributes);
    const ip = isIP(host) !== 0;
    cert.setExtensions([
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [ip ? { type: 7, ip: host } : { type: 2, value: host }] },
      { name: 'subjectKeyIdentifier' },
      { name: 'authorityKeyIdentifier', keyIdentifier: this.authorityKeyId },
    ]);
    cert.sign(this.ca.key, forge.md.sha256.create());
    this.issued++;
    return { pem: forge.pki.certificateToPem(cert), notAfter };
  }
}
