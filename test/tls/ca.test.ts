import { X509Certificate } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import t from 'tap';
import { CA_CERT_FILE, CA_KEY_FILE, loadOrCreateCa, randomSerial } from '../../src/tls/ca.js';
import { configDir, startProxy } from '../support/servers.js';

const fresh = () => join(mkdtempSync(join(tmpdir(), 'credproxy-ca-')), 'ca');

t.test('the CA is created once, with a private key only its owner can read, and then reused as it is', async (t) => {
  const dir = fresh();
  const first = loadOrCreateCa(dir);
  t.equal(first.created, true);
  t.equal(statSync(first.keyPath).mode & 0o777, 0o600);
  t.equal(statSync(dir).mode & 0o777, 0o700);
  const x = new X509Certificate(readFileSync(first.certPath));
  t.equal(x.ca, true);
  t.ok(x.checkIssued(x), 'self-signed');
  t.match(x.subject, /credproxy local CA/);
  const second = loadOrCreateCa(dir);
  t.equal(second.created, false);
  t.equal(second.certPem, first.certPem);
  t.equal(readFileSync(second.keyPath, 'utf8'), readFileSync(first.keyPath, 'utf8'));
});

t.test('a key without its certificate gets a certificate for the same key; a certificate without its key is an error', async (t) => {
  const dir = fresh();
  const first = loadOrCreateCa(dir);
  const key = readFileSync(first.keyPath, 'utf8');
  unlinkSync(first.certPath);
  const again = loadOrCreateCa(dir);
  t.equal(readFileSync(again.keyPath, 'utf8'), key, 'the key is never regenerated while it exists');
  t.equal(new X509Certificate(again.certPem).publicKey.export({ format: 'pem', type: 'spki' }), new X509Certificate(first.certPem).publicKey.export({ format: 'pem', type: 'spki' }));
  unlinkSync(again.keyPath);
  t.throws(() => loadOrCreateCa(dir), /key .* is missing/);
});

t.test('broken or mismatched files are errors, never silently replaced', async (t) => {
  const a = fresh();
  const b = fresh();
  loadOrCreateCa(a);
  loadOrCreateCa(b);
  writeFileSync(join(a, CA_CERT_FILE), readFileSync(join(b, CA_CERT_FILE)));
  t.throws(() => loadOrCreateCa(a), /does not belong to the key/);
  writeFileSync(join(a, CA_CERT_FILE), 'garbage');
  t.throws(() => loadOrCreateCa(a), /is not a PEM certificate/);
  writeFileSync(join(a, CA_KEY_FILE), 'garbage');
  t.throws(() => loadOrCreateCa(a), /is not a PEM RSA private key/);
});

t.test('the CA survives a restart of credproxy: same certificate', async (t) => {
  const dir = configDir('store: memory\n');
  writeFileSync(join(dir, 'credproxy.yaml'), `store: memory\ntls: { ca_dir: ${join(dir, 'ca')} }\n`);
  const one = await startProxy(dir);
  const pem = readFileSync(join(dir, 'ca', CA_CERT_FILE), 'utf8');
  t.equal(one.runtime.tls.ca!.certPem, pem);
  t.match(one.logs.text, /created the local CA/);
  await one.close();
  const two = await startProxy(dir);
  t.teardown(() => two.close());
  t.equal(readFileSync(join(dir, 'ca', CA_CERT_FILE), 'utf8'), pem);
  t.equal(two.runtime.tls.ca!.certPem, pem);
  t.notMatch(two.logs.text, /created the local CA/);
});

t.test('`credproxy ca` prints the certificate path, resolving ca_dir against the config folder; it creates a CA only with --create', async (t) => {
  const cwd = mkdtempSync(join(tmpdir(), 'credproxy-cwd-'));
  const cfg = configDir('store: memory\ntls: { ca_dir: ./certs/ca }\n');
  const cli = resolve('bin/credproxy.js');
  const run = (...extra: string[]) => spawnSync(process.execPath, [cli, 'ca', '--config', cfg, ...extra], { cwd, encoding: 'utf8' });
  const none = run();
  t.equal(none.status, 1, 'no CA yet: an error, not a new CA');
  t.match(none.stderr, `no CA in ${join(cfg, 'certs', 'ca')}`);
  t.notOk(existsSync(join(cfg, 'certs', 'ca', CA_CERT_FILE)));
  const first = run('--create');
  t.equal(first.status, 0, first.stderr);
  t.equal(first.stdout, `${join(cfg, 'certs', 'ca', CA_CERT_FILE)}\n`, "the config folder's, not the working directory's");
  t.match(first.stderr, /created a new local CA/);
  t.notOk(existsSync(join(cwd, 'certs')), 'nothing in the working directory');
  const pem = readFileSync(first.stdout.trim(), 'utf8');
  const second = run();
  t.equal(second.stdout, first.stdout);
  t.equal(second.stderr, '');
  t.equal(readFileSync(second.stdout.trim(), 'utf8'), pem);

  const bad = spawnSync(process.execPath, [cli, 'ca', '--config', join(cwd, 'nope')], { cwd, encoding: 'utf8' });
  t.equal(bad.status, 1);
  t.match(bad.stderr, /config folder does not exist/);
});

t.test('instances starting at once on a shared ca_dir end up with one CA', async (t) => {
  const dir = fresh();
  const mod = resolve('dist/src/tls/ca.js');
  const script = `const { loadOrCreateCa } = await import(${JSON.stringify(mod)}); process.stdout.write(loadOrCreateCa(${JSON.stringify(dir)}).certPem);`;
  const runs = await Promise.all(
    Array.from({ length: 4 }, () =>
      new Promise<{ code: number | null; out: string; err: string }>((done) => {
        const child = spawn(process.execPath, ['--input-type=module', '-e', script]);
        let out = '';
        let err = '';
        child.stdout.on('data', (c: Buffer) => (out += c.toString()));
        child.stderr.on('data', (c: Buffer) => (err += c.toString()));
        child.once('close', (code) => done({ code, out, err }));
      }),
    ),
  );
  const onDisk = readFileSync(join(dir, CA_CERT_FILE), 'utf8');
  for (const r of runs) {
    t.equal(r.code, 0, r.err);
    t.equal(r.out, onDisk, 'every instance uses the certificate on disk');
  }
  t.equal(loadOrCreateCa(dir).certPem, onDisk, 'and it matches the key on disk');
});

t.test('serial numbers are positive, minimal DER integers of 126 random bits: never a leading zero byte OpenSSL refuses', async (t) => {
  const seen = new Set<string>();
  let bad = 0;
  for (let i = 0; i < 20_000; i++) {
    const serial = randomSerial();
    const first = parseInt(serial.slice(0, 2), 16);
    // 0x00 first would need the next byte >= 0x80 to be minimal; 0x80 and up would be negative.
    if (serial.length !== 32 || first < 0x40 || first > 0x7f) bad++;
    seen.add(serial);
  }
  t.equal(bad, 0, 'every first byte in 0x40..0x7f');
  t.equal(seen.size, 20_000, 'no repeats');
});
