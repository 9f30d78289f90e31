import t from 'tap';
import pino from 'pino';
import { ClientAuthenticator, entityPattern, isLoopback, presentedKey, checkListenPolicy } from '../../src/proxy/client-auth.js';
import { loadConfig } from '../support/config.js';
import { configDir, LogCapture } from '../support/servers.js';

t.test('entity patterns', async (t) => {
  t.ok(entityPattern('*').test('anyone@example.com'));
  t.ok(entityPattern('team-*').test('team-1'));
  t.notOk(entityPattern('team-*').test('xteam-1'));
  t.ok(entityPattern('*@example.com').test('a.b@example.com'));
  t.notOk(entityPattern('*@example.com').test('a@exampleXcom'), 'dots are literal');
  t.notOk(entityPattern('a+b').test('aab'), 'plus is literal');
  t.ok(entityPattern('a+b').test('a+b'));
});

t.test('presentedKey', async (t) => {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  t.equal(presentedKey(undefined), undefined);
  t.equal(presentedKey(`Basic ${b64('alice:k1')}`), 'k1');
  t.equal(presentedKey(`Basic ${b64(':k:with:colons')}`), 'k:with:colons');
  t.equal(presentedKey(`Basic ${b64('nocolon')}`), undefined);
  t.equal(presentedKey('Bearer k2'), 'k2');
  t.equal(presentedKey('BEARER   k2  '), 'k2');
  t.equal(presentedKey('Bearer a b'), undefined);
  t.equal(presentedKey('Digest k'), undefined);
});

t.test('authenticate and authorize', async (t) => {
  const auth = new ClientAuthenticator([
    { name: 'a', key: 'key-a-0123456789ab', entities: ['*'] },
    { name: 'b', key: 'key-b-0123456789ab', entities: ['bob', 'ops-*'] },
  ]);
  t.equal(auth.authenticate('Bearer key-a-0123456789ab'), 'a');
  t.equal(auth.authenticate('Bearer key-b-0123456789ab'), 'b');
  t.throws(() => auth.authenticate('Bearer key-c-0123456789ab'), { code: 'proxy_auth_required' });
  t.throws(() => auth.authenticate(undefined), { code: 'proxy_auth_required', headers: { 'proxy-authenticate': 'Basic realm="credproxy"' } });
  t.doesNotThrow(() => auth.authorize('b', 'ops-1'));
  t.doesNotThrow(() => auth.authorize('b', undefined), 'no entity named: the pipeline decides');
  t.throws(() => auth.authorize('b', 'alice'), { code: 'entity_denied' });
  t.throws(() => auth.authorize('nobody', 'alice'), { code: 'entity_denied' });
});

t.test('isLoopback and the listen policy', async (t) => {
  for (const h of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1']) t.ok(isLoopback(h), h);
  for (const h of ['0.0.0.0', '::', '10.0.0.1', 'example.com', '128.0.0.1']) t.notOk(isLoopback(h), h);
  const logs = new LogCapture();
  const log = pino(logs);
  const cfg = (yaml: string, host: string) => loadConfig(configDir(yaml), { host, env: {} }).settings;
  t.throws(() => checkListenPolicy(cfg('store: memory\n', '::'), log), /refusing to listen on ::/);
  t.doesNotThrow(() => checkListenPolicy(cfg('store: memory\n', '127.0.0.1'), log));
  t.doesNotThrow(() => checkListenPolicy(cfg('store: memory\nallow_unauthenticated: true\n', '0.0.0.0'), log));
  t.match(logs.text, /allow_unauthenticated/);
});
