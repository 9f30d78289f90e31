import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import t from 'tap';
import { parse } from 'yaml';
import { SCHEMES } from '../../src/auth/registry.js';
import { integrationJsonSchema, schemaFiles, settingsJsonSchema } from '../../src/config/json-schema.js';
import type { AuthType } from '../../src/config/types.js';

const root = process.cwd();
const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false, allowUnionTypes: true });
const settings = ajv.compile(settingsJsonSchema());
const integration = ajv.compile(integrationJsonSchema(SCHEMES));

const yamlFiles = (dir: string) =>
  readdirSync(join(root, dir))
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => join(dir, f));

t.test('the committed schema files are what the build generates (they cannot go stale)', async (t) => {
  for (const [name, text] of Object.entries(schemaFiles(SCHEMES))) {
    t.equal(readFileSync(join(root, 'schema', name), 'utf8'), text, `schema/${name}`);
  }
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { files: string[]; scripts: { build: string } };
  t.ok(pkg.files.includes('schema'), 'schema/ is shipped in the package');
  t.match(pkg.scripts.build, /write-schemas/, 'the build writes them');
});

t.test('the schema accepts every shipped config', async (t) => {
  t.ok(settings(parse(readFileSync(join(root, 'config/credproxy.yaml'), 'utf8'))), JSON.stringify(settings.errors));
  t.ok(settings(parse(readFileSync(join(root, 'docker/credproxy.yaml'), 'utf8'))), JSON.stringify(settings.errors));
  for (const file of [...yamlFiles('config/integrations'), ...yamlFiles('config/catalog')]) {
    const text = readFileSync(join(root, file), 'utf8');
    const doc = parse(text) as { auth: { type: AuthType } | Array<{ type: AuthType }> };
    t.test(file, async (t) => {
      // An unknown auth.type fails here (it is in no variant of the schema), never skips.
      t.same([doc.auth].flat().filter((a) => !SCHEMES[a.type]).map((a) => a.type), [], 'every auth.type is registered');
      t.match(text, /^# yaml-language-server: \$schema=/);
      t.ok(integration(doc), JSON.stringify(integration.errors));
    });
  }
});

t.test('the schema rejects what credproxy rejects', async (t) => {
  const bad: Array<[string, unknown]> = [
    ['unknown top-level key', { hosts: ['a.example'], auth: { type: 'bearer' }, hostz: [] }],
    ['no hosts', { auth: { type: 'bearer' } }],
    ['unknown auth type', { hosts: ['a.example'], auth: { type: 'kerberos' } }],
    ['a key of another auth type', { hosts: ['a.example'], auth: { type: 'bearer', token_url: 'https://x' } }],
    ['oauth2 without client_id', { hosts: ['a.example'], auth: { type: 'oauth2', authorize_url: 'https://a', token_url: 'https://t' } }],
    ['a bad header name', { hosts: ['a.example'], auth: { type: 'bearer' }, inject: { headers: { 'Bad Header': 'x' } } }],
    ['refresh_on out of range', { hosts: ['a.example'], auth: { type: 'bearer' }, refresh_on: [200] }],
    ['a bad name', { name: 'Has Caps', hosts: ['a.example'], auth: { type: 'bearer' } }],
    ['an empty auth list', { hosts: ['a.example'], auth: [] }],
  ];
  for (const [why, doc] of bad) t.notOk(integration(doc), why);
  t.notOk(settings({ passthrough: 'sometimes' }), 'a value outside an enum');
  t.notOk(settings({ limits: { replay_body_bytes: -1 } }), 'a negative limit');
  t.notOk(settings({ events: { secret: 'x' } }), 'events without webhook_url');
  t.ok(settings({ passthrough: '${PASSTHROUGH}' }), 'an environment reference may stand for an enum value');
  t.ok(integration({ hosts: ['a.example'], auth: [{ type: 'bearer' }, { type: 'basic' }] }), 'a list of schemes');
});
