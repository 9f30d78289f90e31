import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import t from 'tap';
import { upstreamCaList } from '../../src/tls/upstream.js';
import { makeTestCa } from '../support/certs.js';
import { configDir, startProxy } from '../support/servers.js';

t.test('tls.upstream_ca adds to the system CAs; an unreadable or non-PEM file is an error at start', async (t) => {
  t.equal(upstreamCaList(undefined), undefined, 'no extra CA: node\'s defaults');
  const dir = mkdtempSync(join(tmpdir(), 'credproxy-upca-'));
  const ca = makeTestCa();
  const list = upstreamCaList(ca.write(dir))!;
  t.equal(list.length, rootCertificates.length + 1);
  t.equal(list.at(-1), ca.certPem);
  t.throws(() => upstreamCaList(join(dir, 'missing.pem')), /tls\.upstream_ca: cannot read .*missing\.pem \(ENOENT\)/);
  writeFileSync(join(dir, 'junk.pem'), 'not a certificate');
  t.throws(() => upstreamCaList(join(dir, 'junk.pem')), /holds no PEM certificate/);

  const cfg = configDir(`store: memory\ntls: { intercept: false, upstream_ca: ${join(dir, 'missing.pem')} }\n`);
  await t.rejects(startProxy(cfg), /tls\.upstream_ca: cannot read/);
});
