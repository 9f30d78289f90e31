import t from 'tap';
import { integrationHostnames, noProxyWithout } from '../../src/cli/no-proxy.js';

t.test('integration host patterns as host names', async (t) => {
  t.same(integrationHostnames(['api.x.com', '127.0.0.1:8443', '*.y.com', '{{sub}}.zendesk.com', '[::1]:9000', 'API.Z.COM']), ['api.x.com', '127.0.0.1', '*.y.com', '*.zendesk.com', '::1', 'api.z.com']);
});

t.test('NO_PROXY entries that would send an integration host around credproxy are left out', async (t) => {
  const hosts = ['api.x.com', '*.y.com', '{{sub}}.zendesk.com', '127.0.0.1:8443'];
  const r = noProxyWithout('internal.corp, .x.com,a.y.com,zendesk.com,y.com:443,*,other.org,localhost,::1,127.0.0.0/8', hosts);
  t.equal(r.value, 'internal.corp,other.org');
  t.same(
    r.removed.map((e) => e.entry),
    ['.x.com', 'a.y.com', 'zendesk.com', 'y.com:443', '*', 'localhost', '::1', '127.0.0.0/8'],
  );
  t.equal(noProxyWithout('localhost,127.0.0.1,::1', ['api.openai.com']).value, 'localhost,127.0.0.1,::1', 'no loopback integration: local services stay direct');
  t.equal(noProxyWithout('', hosts).value, '');
  t.equal(noProxyWithout('x.com', ['api.x.com']).removed[0]?.host, 'api.x.com', 'a parent domain covers its subdomains');
  t.equal(noProxyWithout('notx.com', ['x.com']).value, 'notx.com', 'a suffix is not a parent domain');
});
