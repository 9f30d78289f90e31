import { readFileSync } from 'node:fs';
import t from 'tap';
import { EXPORT_VERSION, openExport, sealExport, type Payload } from '../../src/store/export.js';
import { CONNECTIONS } from '../support/store-data.js';

const PASS = 'export unit test passphrase';
const payload: Payload = { connections: CONNECTIONS, sealed: [], entity_tokens: [{ key: 'kv:entity-token-id:tok_1', value: 'abcd', expires_at: 4_102_444_800_000 }], label_indexes: [{ entity: 'erin', integration: 'zendesk', labels: ['acme', 'other'] }] };

t.test('sealed to a passphrase: opens with it, not without; the header cannot be altered', async (t) => {
  const text = await sealExport(payload, PASS, new Date('2026-12-04T00:00:00Z'));
  const file = JSON.parse(text) as Record<string, unknown>;
  t.match(file, { format: 'credproxy-export', version: EXPORT_VERSION, created_at: '2026-12-04T00:00:00.000Z', kdf: { name: 'scrypt', N: 32768, r: 8, p: 1 }, cipher: 'aes-256-gcm' });
  t.notMatch(text, 'sk_live_1', 'no credential in clear');
  t.same((await openExport(text, PASS)).payload, JSON.parse(JSON.stringify(payload)));
  await t.rejects(openExport(text, 'wrong'), /wrong passphrase, or the export file was changed/);
  await t.rejects(openExport(JSON.stringify({ ...file, created_at: '2027-01-01T00:00:00.000Z' }), PASS), /was changed/, 'the header is bound to the data');
  await t.rejects(openExport(JSON.stringify({ ...file, version: 2 }), PASS), /format version 2 is not one this credproxy reads \(it reads 1\); use a newer credproxy/);
  await t.rejects(openExport(JSON.stringify({ ...file, kdf: { ...(file.kdf as object), N: 2 ** 30 } }), PASS), /scrypt parameters out of bounds/);
  await t.rejects(openExport('{"format":"something"}', PASS), /not a credproxy export file/);
  await t.rejects(openExport('PK\u0003\u0004', PASS), /not JSON/);
  await t.rejects(sealExport(payload, ''), /passphrase is empty/);
});

t.test('a payload import could not use is refused before anything is written', async (t) => {
  const broken = (p: unknown) => sealExport(p as Payload, PASS).then((text) => openExport(text, PASS));
  await t.rejects(broken({ ...payload, entity_tokens: undefined }), /a section is missing/);
  await t.rejects(broken({ ...payload, connections: [{ ...CONNECTIONS[0], credentials: { n: 1 } }] }), /is incomplete/);
  await t.rejects(broken({ ...payload, connections: [{ ...CONNECTIONS[0], status: 'gone' }] }), /has status "gone"/);
  await t.rejects(broken({ ...payload, entity_tokens: [{ key: 'kv:link:x', value: 'y' }] }), /entity token record under another key/);
});

t.test('the committed fixture of this release opens with its passphrase', async (t) => {
  const { payload: p, version } = await openExport(readFileSync('test/fixtures/export-v1.json', 'utf8'), 'correct horse battery staple (export fixture)');
  t.equal(version, 1);
  t.equal(p.connections.length, CONNECTIONS.length);
});
