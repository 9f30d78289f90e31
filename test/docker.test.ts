import { cpSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import pino from 'pino';
import { ConfigError, loadConfig } from './support/config.js';
import { checkListenPolicy } from '../src/proxy/client-auth.js';
import { LogCapture } from './support/servers.js';

/** The config folder the Docker image runs with: config/integrations plus docker/credproxy.yaml. */
function imageConfig(): string {
  const dir = mkdtempSync(join(tmpdir(), 'credproxy-image-'));
  cpSync(new URL('../config', import.meta.url), dir, { recursive: true });
  cpSync(new URL('../docker/credproxy.yaml', import.meta.url), join(dir, 'credproxy.yaml'));
  return dir;
}

t.test("the image's config listens on all interfaces and requires proxy clients to authenticate", async (t) => {
  const config = loadConfig(imageConfig(), { env: { CREDPROXY_CLIENT_KEY: 'client-key-0123456789abcdef' } });
  t.equal(config.settings.listen.host, '0.0.0.0');
  t.same(config.settings.clients?.map((c) => c.name), ['default']);
  t.doesNotThrow(() => checkListenPolicy(config.settings, pino(new LogCapture())), 'a non-loopback listen is allowed: clients are configured');
});

t.test('without CREDPROXY_CLIENT_KEY the image refuses to start, naming the variable', async (t) => {
  let err: unknown;
  try {
    loadConfig(imageConfig(), { env: {} });
  } catch (e) {
    err = e;
  }
  t.ok(err instanceof ConfigError, 'a config error');
  t.match((err as Error).message, /credproxy\.yaml:\d+: .*CREDPROXY_CLIENT_KEY is not set/);
});
