import { X509Certificate } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { loadOrCreateCa } from '../../src/tls/ca.js';
import { LeafCertificates } from '../../src/tls/leaf.js';

const ca = loadOrCreateCa(join(mkdtempSync(join(tmpdir(), 'credproxy-leaf-')), 'ca'));
const caCert = new X509Certificate(ca.certPem);
const DAY = 24 * 3600 * 1000;

t.test('leaves name the host in SAN (DNS or IP), are short-lived server certificates and chain to the CA', async (t) => {
  const leaves = new LeafCertificates(ca);
  const now = Date.now();
  const dns = new X509Certificate((await leaves.issue('api.example.com', now)).pem);
  t.equal(dns.subjectAltName, 'DNS:api.example.com');
  t.equal(dns.subject, 'CN=api.example.com');
  t.equal(dns.ca, false);
  t.ok(dns.checkIssued(caCert));
  t.ok(dns.verify(caCert.publicKey));
  t.ok(dns.checkHost('api.example.com'));
  t.notOk(dns.checkHost('other.example.com'));
  t.ok(Date.parse(dns.validTo) - now <= 7 * DAY + 1000, 'valid a week at most');
  t.ok(Date.parse(dns.validFrom) < now, 'already valid for clients whose clock is a little behind');
  t.match(dns.keyUsage ?? [], ['1.3.6.1.5.5.7.3.1'], 'serverAuth');

  t.equal(new X509Certificate((await leaves.issue('10.0.0.1')).pem).subjectAltName, 'IP Address:10.0.0.1');
  t.ok(new X509Certificate((await leaves.issue('2001:db8::1')).pem).checkIP('2001:db8::1'));
  const long = `${'a'.repeat(60)}.example.com`;
  const l = new X509Certificate((await leaves.issue(long)).pem);
  t.ok(l.checkHost(long), 'names longer than a CN allows still go in SAN');
});

t.test('one certificate per host, reused until it nears expiry; the cache is bounded', async (t) => {
  const leaves = new LeafCertificates(ca, { validityMs: 10 * DAY, maxHosts: 2 });
  const now = Date.now();
  const a = await leaves.contextFor('a.example', now);
  t.equal(await leaves.contextFor('a.example', now + DAY), a);
  t.equal(leaves.issued, 1);
  t.not(await leaves.contextFor('a.example', now + 9 * DAY), a, 'renewed before it expires');
  t.equal(leaves.issued, 2);
  await leaves.contextFor('b.example', now);
  await leaves.contextFor('a.example', now + 9 * DAY); // a is now the most recently used
  await leaves.contextFor('c.example', now); // evicts b
  t.equal(leaves.issued, 4);
  await leaves.contextFor('a.example', now + 9 * DAY);
  t.equal(leaves.issued, 4, 'a stayed');
  await leaves.contextFor('b.example', now);
  t.equal(leaves.issued, 5, 'b was evicted and made again');
});
