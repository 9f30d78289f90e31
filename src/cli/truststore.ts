import { X509Certificate } from 'node:crypto';

/**
 * A PKCS#12 trust store (certificates only, no keys, no password) from a PEM bundle, for Java:
 * `-Djavax.net.ssl.trustStore=… -Djavax.net.ssl.trustStoreType=PKCS12`. Java reads a certificate
 * bag as a trusted entry only when it carries Oracle's "trusted key usage" attribute, which
 * OpenSSL does not write; `keytool` would, but costs a JVM start per certificate. So the few
 * DER structures are written here (RFC 7292), unencrypted and without a MAC: the content is
 * public certificates, and Java loads a store without a MAC when no password is given.
 */

function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
const tlv = (tag: number, ...parts: Buffer[]): Buffer => {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([tag]), len(body.length), body]);
};
const seq = (...parts: Buffer[]) => tlv(0x30, ...parts);
const set = (...parts: Buffer[]) => tlv(0x31, ...parts);
const octets = (b: Buffer) => tlv(0x04, b);
const explicit0 = (b: Buffer) => tlv(0xa0, b);
const int = (n: number) => tlv(0x02, Buffer.from([n]));

function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number) as [number, number, ...number[]];
  const out = [40 * a + b];
  for (const n of rest) {
    const chunk = [n & 0x7f];
    for (let v = Math.floor(n / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | (v & 0x7f));
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

const DATA = oid('1.2.840.113549.1.7.1');
const CERT_BAG = oid('1.2.840.113549.1.12.10.1.3');
const X509_CERT = oid('1.2.840.113549.1.9.22.1');
const FRIENDLY_NAME = oid('1.2.840.113549.1.9.20');
const TRUSTED_KEY_USAGE = oid('2.16.840.1.113894.746875.1.1');
const ANY_EKU = oid('2.5.29.37.0');

/** Every certificate of a PEM bundle, as DER; anything that does not parse is left out. */
export function pemCertificates(pem: string): Buffer[] {
  const out: Buffer[] = [];
  for (const m of pem.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)) {
    try {
      out.push(new X509Certificate(m[0]).raw);
    } catch {
      /* a damaged entry of a system bundle: the others still count */
    }
  }
  return out;
}

export function trustStoreP12(pem: string): Buffer {
  const seen = new Set<string>();
  const bags: Buffer[] = [];
  for (const der of pemCertificates(pem)) {
    const key = der.toString('base64');
    if (seen.has(key)) continue;
    seen.add(key);
    const alias = Buffer.from(`cert-${bags.length}`, 'utf16le').swap16();
    const attrs = set(seq(FRIENDLY_NAME, set(tlv(0x1e, alias))), seq(TRUSTED_KEY_USAGE, set(ANY_EKU)));
    bags.push(seq(CERT_BAG, explicit0(seq(X509_CERT, explicit0(octets(der)))), attrs));
  }
  const safeContents = seq(...bags);
  const authSafe = seq(seq(DATA, explicit0(octets(safeContents))));
  return seq(int(3), seq(DATA, explicit0(octets(authSafe))));
}
