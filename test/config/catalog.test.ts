import { generateKeyPairSync } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import t from 'tap';
import { parse } from 'yaml';
import { SCHEMES } from '../../src/auth/registry.js';
import type { AuthType } from '../../src/config/types.js';
import { loadConfig } from '../support/config.js';
import { configDir } from '../support/servers.js';

const CATALOG = join(process.cwd(), 'config', 'catalog');
const files = readdirSync(CATALOG)
  .filter((f) => f.endsWith('.yaml'))
  .sort();

/** A real key for the signing schemes, which check it when the config loads. */
const pem = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

/** Every `${NAME}` a file uses, with a value of the right kind. */
function envFor(text: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [, name] of text.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g)) {
    env[name!] = name!.endsWith('PRIVATE_KEY') ? pem : `test-${name!.toLowerCase()}`;
  }
  return env;
}

/** The auth types a file declares (one mapping or a list). */
export function authTypes(text: string): AuthType[] {
  const doc = parse(text) as { auth: { type: AuthType } | Array<{ type: AuthType }> };
  return [doc.auth].flat().map((a) => a.type);
}

t.test('the catalog covers at least 25 APIs', async (t) => {
  t.ok(files.length >= 25, `${files.length} files`);
});

for (const file of files) {
  const text = readFileSync(join(CATALOG, file), 'utf8');
  t.test(`catalog/${file} validates as credproxy validate would`, async (t) => {
    // An auth.type this build does not know is a failure, never a skip: a catalog file must work as shipped.
    t.same(authTypes(text).filter((type) => !SCHEMES[type]), [], 'every auth.type is registered in src/auth/registry.ts');
    const dir = configDir('store: memory\n', { [basename(file, '.yaml')]: text });
    const config = loadConfig(dir, { env: envFor(text) });
    const integration = config.integrations.get(basename(file, '.yaml'));
    t.ok(integration, 'the integration is named after its file');
    t.ok(integration!.description, 'it says what it is');
  });
  t.test(`catalog/${file} is ready to copy`, async (t) => {
    t.match(text, /^# yaml-language-server: \$schema=\.\.\/\.\.\/schema\/integration\.schema\.json\n/, 'it points editors at the schema');
    t.notMatch(text.replace(/\$\{[A-Z0-9_]+\}/g, ''), /(client_secret|private_key|api_key|token):[ \t]*["']?[A-Za-z0-9_-]{12,}/, 'no secret is written in the file');
  });
}

t.test('every catalog file is in the table of docs/catalog.md, and nothing else is', async (t) => {
  const page = readFileSync(join(process.cwd(), 'docs', 'catalog.md'), 'utf8');
  const start = page.indexOf('\n## Catalog\n');
  t.not(start, -1, 'docs/catalog.md has a `## Catalog` section');
  const end = page.indexOf('\n## ', start + 1);
  const section = page.slice(start, end === -1 ? undefined : end);
  const rows = section.split('\n').filter((l) => l.startsWith('| `'));
  const listed = rows.map((l) => /^\| `([^`]+)`/.exec(l)![1]!);
  t.same(listed.sort(), [...files].sort(), 'one row per file in config/catalog/');
});
