import { mkdtempSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import t from 'tap';
import { BUNDLE_FILE, passthroughTrust } from '../../src/tls/bundle.js';
import { makeTestCa } from '../support/certs.js';

t.test('passthrough trust: the upstream list, plus what the client bundle holds once it exists, less our own CA', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'credproxy-bundle-'));
  const own = makeTestCa('own');
  const clientCa = makeTestCa('client system CA');
  const later = makeTestCa('added later');
  const upstream = ['UPSTREAM-CA-PEM'];

  const trust = passthroughTrust(dir, own.certPem, upstream);
  t.equal(trust(), upstream, 'no bundle yet: the upstream list as it is');

  const file = join(dir, BUNDLE_FILE);
  writeFileSync(file, `# credproxy CA\n${own.certPem}\n${clientCa.certPem}`);
  const first = trust();
  t.same(first, [...upstream, clientCa.certPem.trim()], "the client's CAs on top, credproxy's own left out");
  t.equal(trust(), first, 'not re-read while the file is unchanged');

  writeFileSync(file, `${own.certPem}\n${clientCa.certPem}\n${later.certPem}`);
  utimesSync(file, new Date(), new Date(Date.now() + 5000));
  t.same(trust(), [...upstream, clientCa.certPem.trim(), later.certPem.trim()], 're-read when it changes');

  writeFileSync(file, own.certPem);
  utimesSync(file, new Date(), new Date(Date.now() + 10_000));
  t.equal(trust(), upstream, 'a bundle with only our CA adds nothing');

  const noUpstream = passthroughTrust(dir, undefined, undefined);
  t.same(noUpstream(), [...rootCertificates, own.certPem.trim()], "without upstream_ca: node's roots plus the bundle");
  t.equal(passthroughTrust(undefined, undefined, upstream)(), upstream, 'no CA folder (interception off): the upstream list');
});
