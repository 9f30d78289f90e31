import { copyFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { loadConfig } from '../support/config.js';

const examples = join(import.meta.dirname, '..', '..', 'config', 'examples');
const env = { GITHUB_CLIENT_ID: 'id', GITHUB_CLIENT_SECRET: 'secret', GOOGLE_CLIENT_ID: 'id', GOOGLE_CLIENT_SECRET: 'secret' };

for (const file of ['github-oauth.yaml', 'google-calendar.yaml']) {
  t.test(`config/examples/${file} loads once its variables are set`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'credproxy-example-'));
    mkdirSync(join(dir, 'integrations'));
    copyFileSync(join(examples, file), join(dir, 'integrations', file));
    const config = loadConfig(dir, { env });
    const [integration] = [...config.integrations.values()];
    t.equal(integration!.schemes[0]!.type, 'oauth2');
    t.throws(() => loadConfig(dir, { env: {} }), /CLIENT_ID/, 'and names the missing variable otherwise');
  });
}
