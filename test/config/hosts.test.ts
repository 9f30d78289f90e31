import t from 'tap';
import { normalizeHostname, parseHostPattern } from '../../src/config/hosts.js';

t.test('normalizeHostname', async (t) => {
  t.equal(normalizeHostname('API.Example.COM.'), 'api.example.com');
  t.equal(normalizeHostname('Bücher.example'), 'xn--bcher-kva.example');
  t.equal(normalizeHostname('[::1]'), '::1');
  t.equal(normalizeHostname('FE80::1'), 'fe80::1');
  t.equal(normalizeHostname('a:b:zz'), '', 'colons only in IPv6 literals');
  t.equal(normalizeHostname('a..b'), '');
  t.equal(normalizeHostname('-a.example'), '');
  t.equal(normalizeHostname('a'.repeat(64) + '.example'), '', 'labels are at most 63 characters');
});

t.test('parseHostPattern', async (t) => {
  t.same(parseHostPattern('api.example.com:443', 443), { host: 'api.example.com', port: undefined, wildcard: false, template: false, source: 'api.example.com:443' }, 'the default port is no port');
  t.same(parseHostPattern('api.example.com:80', 443), { host: 'api.example.com', port: 80, wildcard: false, template: false, source: 'api.example.com:80' });
  t.same(parseHostPattern('[::1]:8080', 80), { host: '::1', port: 8080, wildcard: false, template: false, source: '[::1]:8080' });
  t.same(parseHostPattern('*.Example.com', 443), { host: 'example.com', port: undefined, wildcard: true, template: false, source: '*.Example.com' });
  t.same(parseHostPattern('{{sub}}.Example.com', 443), { host: '{{sub}}.example.com', port: undefined, wildcard: false, template: true, source: '{{sub}}.Example.com' });
  for (const bad of ['http://a.example', 'a.example/x', 'u@a.example', 'a.example?x', 'a.example:0', 'a.example:x', '[::1', '**.example.com', 'a*.example.com', '*.', '{{a}}', 'a.{{b c}}.example']) {
    t.type(parseHostPattern(bad, 443), 'string', `${bad} is refused`);
  }
});
