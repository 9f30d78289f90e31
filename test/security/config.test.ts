import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ConfigError, loadConfig } from '../support/config.js';
import { configDir, startProxy } from '../support/servers.js';

/**
 * Bad config edits: every one is refused whole, with `file:line: message`, and a proxy is
 * never started on a half-understood config (which could, say, drop an allow-list).
 */
const bad: Array<[name: string, settings: string, integration: string | undefined, message: RegExp, env?: Record<string, string>]> = [
  ['YAML syntax error', 'listen: [unclosed\n', undefined, /credproxy\.yaml:\d+: /],
  ['a tab used for indentation', 'limits:\n\treplay_body_bytes: 1\n', undefined, /credproxy\.yaml:\d+: /],
  ['a duplicate key', 'passthrough: deny\npassthrough: allow\n', undefined, /credproxy\.yaml:3: /],
  ['a misspelt key', 'passtrough: deny\n', undefined, /credproxy\.yaml:2: .*passtrough/],
  ['a wrong type', 'limits: { header_count: "many" }\n', undefined, /credproxy\.yaml:2: .*header_count/],
  ['a limit out of range', 'limits: { header_bytes: 12 }\n', undefined, /credproxy\.yaml:2: .*header_bytes/],
  ['passthrough neither allow nor deny', 'passthrough: maybe\n', undefined, /credproxy\.yaml:2: .*passthrough/],
  ['allow_private entry that is not a CIDR', 'egress: { allow_private: ["10.0.0.0/99"] }\n', undefined, /credproxy\.yaml:2: .*not a CIDR/],
  ['allow_private entry that is a host name', 'egress: { allow_private: ["internal.example/8"] }\n', undefined, /not a CIDR/],
  ['a client key shorter than 16 characters', 'clients: [{ name: a, key: short }]\n', undefined, /credproxy\.yaml:2: .*key/],
  ['a client without a key', 'clients: [{ name: a }]\n', undefined, /credproxy\.yaml:2: .*key/],
  ['an entity pattern with a space', 'clients: [{ name: a, key: "0123456789abcdef0", entities: ["a b"] }]\n', undefined, /entities/],
  ['a client key from a missing variable', 'clients: [{ name: a, key: "${NO_SUCH_KEY_VAR}" }]\n', undefined, /credproxy\.yaml:2: .*NO_SUCH_KEY_VAR/],
  ['CRLF from the environment into an injected header', '', 'hosts: [a.test]\nauth: { type: bearer }\ninject: { headers: { X-A: "${EVIL}" } }\n', /demo\.yaml:3: /, { EVIL: 'x\r\nX-Injected: 1' }],
  ['an integration host with userinfo', '', 'hosts: ["user@a.test"]\nauth: { type: bearer }\n', /demo\.yaml:1: .*not a host/],
  ['an integration host with a path', '', 'hosts: ["a.test/x"]\nauth: { type: bearer }\n', /demo\.yaml:1: /],
  ['an unsupported auth type', '', 'hosts: [a.test]\nauth: { type: magic }\n', /demo\.yaml:2: /],
  ['public_url that is not a URL', 'public_url: "not a url"\n', undefined, /credproxy\.yaml:2: .*not a URL/],
  ['a connect redirect that is not http(s)', 'connect: { allowed_redirects: ["javascript:alert(1)"] }\n', undefined, /credproxy\.yaml:2: .*must be a http or https URL/],
  ['a frame ancestor with a path', 'connect: { frame_ancestors: ["https://app.example/embed"] }\n', undefined, /credproxy\.yaml:2: connect\.frame_ancestors\[0\]: "https:\/\/app\.example\/embed" is not an origin: frame_ancestors takes origins such as https:\/\/app\.example\.com/],
  ['a frame ancestor that would add a CSP directive', 'connect: { frame_ancestors: ["https://a.example; script-src *"] }\n', undefined, /credproxy\.yaml:2: .*is not an origin/],
  ['a frame ancestor of any site', 'connect: { frame_ancestors: ["*"] }\n', undefined, /credproxy\.yaml:2: connect\.frame_ancestors\[0\]: "\*" is not allowed: it would let any site frame the connect page/],
  ['a field pattern that is not a regular expression', '', 'hosts: [a.test]\nauth: { type: api_key, fields: [{ name: k, pattern: "([" }] }\n', /demo\.yaml:2: .*not a valid regular expression/],
];

for (const [name, settings, integration, message, env] of bad) {
  t.test(name, async (t) => {
    const dir = configDir(`store: memory\n${settings}`, integration ? { demo: integration } : {});
    t.throws(() => loadConfig(dir, { env: { ...env } }), ConfigError);
    try {
      loadConfig(dir, { env: { ...env } });
    } catch (err) {
      t.match((err as Error).message, message);
      if (env) for (const v of Object.values(env)) t.notMatch((err as Error).message, v, 'the message does not repeat the value');
    }
    await t.rejects(startProxy(dir, { env: { ...env } }), ConfigError, 'the proxy does not start');
  });
}

t.test('every problem in one load is reported, not just the first', async (t) => {
  const dir = configDir('store: memory\npassthrough: maybe\nlimits: { header_count: 1 }\n');
  writeFileSync(join(dir, 'integrations', 'x.yaml'), 'hosts: []\n');
  try {
    loadConfig(dir);
    t.fail('should throw');
  } catch (err) {
    t.ok((err as ConfigError).problems.length >= 3, (err as Error).message);
  }
});
