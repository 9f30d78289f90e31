import t from 'tap';
import { parseHostPattern, type HostPattern } from '../../src/config/hosts.js';
import { checkVerify } from '../../src/config/verify.js';

// The verify request through the API is in test/api/verify.test.ts; this is the rule that it
// can only go where a proxied request would get the same credentials.
const hosts = (...h: string[]) => h.map((s) => parseHostPattern(s, 443) as HostPattern);

function check(raw: Parameters<typeof checkVerify>[0], hs: HostPattern[], paths = ['/']) {
  const problems: string[] = [];
  const v = checkVerify(raw, hs, paths, 443, (key, message) => problems.push(`${key.join('.')}|${message}`));
  return { v, problems };
}

t.test('no verify: nothing, no problem', async (t) => {
  t.same(check(undefined, hosts('api.example.com')), { v: undefined, problems: [] });
});

t.test('defaults: GET to the first concrete host', async (t) => {
  const { v, problems } = check({ path: '/v1/me' }, hosts('*.example.com', 'api.example.com'));
  t.same(problems, []);
  t.match(v, { method: 'GET', path: '/v1/me', host: { host: 'api.example.com', wildcard: false } });
});

t.test('the path must be under the integration paths (query ignored, segment-aware)', async (t) => {
  t.same(check({ path: '/v1/me?x=1' }, hosts('api.example.com'), ['/v1']).problems, []);
  const { problems } = check({ path: '/v1x/me' }, hosts('api.example.com'), ['/v1']);
  t.match(problems, [/^path\|verify\.path: \/v1x\/me is not under the integration's paths \(\/v1\)/]);
  t.match(check({ path: '/v1/..%2Fadmin' }, hosts('api.example.com'), ['/v1']).problems, [/^path\|/], 'an encoded escape is not under /v1');
});

t.test('an explicit host must be one the integration owns', async (t) => {
  t.match(check({ path: '/', host: 'api.example.com' }, hosts('api.example.com')).v, { host: { host: 'api.example.com' } });
  t.match(check({ path: '/', host: 'eu.example.com' }, hosts('*.example.com')).v, { host: { host: 'eu.example.com' } }, 'under a wildcard');
  t.match(check({ path: '/', host: 'evil.test' }, hosts('api.example.com')).problems, [/^host\|verify\.host: "evil\.test" is not one of the integration's hosts/]);
  t.match(check({ path: '/', host: 'api.example.com:8443' }, hosts('api.example.com')).problems, [/not one of the integration's hosts/], 'another port is another host');
  t.match(check({ path: '/', host: 'example.com' }, hosts('*.example.com')).problems, [/not one of/], 'a wildcard covers subdomains only');
  t.match(check({ path: '/', host: '*.example.com' }, hosts('*.example.com')).problems, [/a wildcard names no host/]);
  t.match(check({ path: '/', host: 'https://api.example.com/' }, hosts('api.example.com')).problems, [/^host\|verify\.host: .*not a host name/]);
});

t.test('only wildcard hosts and no verify.host: asked to name one', async (t) => {
  const { v, problems } = check({ path: '/' }, hosts('*.example.com'));
  t.equal(v, undefined);
  t.match(problems, [/^\|verify\.host: every hosts entry is a wildcard/]);
});
