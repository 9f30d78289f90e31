import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import forge from 'node-forge';
import t from 'tap';
import { pemCertificates, trustStoreP12 } from '../../src/cli/truststore.js';
import { makeTestCa } from '../support/certs.js';

t.test('the PKCS#12 trust store holds every certificate of the bundle once, as a trusted entry Java reads', async (t) => {
  const a = makeTestCa('trust store A');
  const b = makeTestCa('trust store B');
  const pem = `# a comment\n${a.certPem}\n${b.certPem}\n${a.certPem}\n-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n`;
  t.equal(pemCertificates(pem).length, 3, 'a damaged entry is left out');
  const p12 = trustStoreP12(pem);
  const parsed = forge.pkcs12.pkcs12FromAsn1(forge.asn1.fromDer(forge.util.createBuffer(p12.toString('binary'))), false);
  const bags = parsed.getBags({ bagType: forge.pki.oids.certBag! })[forge.pki.oids.certBag!] ?? [];
  t.same(bags.map((bag) => bag.cert?.subject.getField('CN')?.value), ['trust store A', 'trust store B'], 'duplicates once');
  // DER of OID 2.16.840.1.113894.746875.1.1, Java's "trusted key usage": without it Java skips the bag.
  const oid = Buffer.from('060c6086480186f966adca7b0101', 'hex');
  let count = 0;
  for (let i = p12.indexOf(oid); i >= 0; i = p12.indexOf(oid, i + 1)) count++;
  t.equal(count, 2, "each bag carries Java's trusted-key-usage attribute");
  let keytool = true;
  try {
    execFileSync('keytool', ['-help'], { stdio: 'ignore' });
  } catch {
    keytool = false;
  }
  if (keytool) {
    const file = join(mkdtempSync(join(tmpdir(), 'credproxy-p12-')), 'store.p12');
    writeFileSync(file, p12);
    const list = execFileSync('keytool', ['-list', '-keystore', file, '-storetype', 'PKCS12', '-storepass', ''], { encoding: 'utf8' });
    t.match(list, /Your keystore contains 2 entries/);
    t.equal(list.match(/trustedCertEntry/g)?.length, 2);
  }
});
