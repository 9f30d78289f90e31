import t from 'tap';
import { configDir, startProxy, type TestProxy } from '../support/servers.js';

/**
 * The headers every HTML answer gets (src/ui/page.ts), and `connect.frame_ancestors`: the
 * connect pages (everything under /connect/) may be framed by the origins it names; the
 * dashboard never, whatever it says. Real HTTP against a running proxy.
 */

const KEY_INTEGRATION = 'hosts: [keys.example]\nauth: { type: api_key }\n';

async function proxyWith(t: { teardown(fn: () => unknown): void }, settings: string): Promise<TestProxy> {
  const p = await startProxy(configDir(`store: memory\n${settings}`, { keys: KEY_INTEGRATION }));
  t.teardown(() => p.close());
  return p;
}

const html = { accept: 'text/html' };
const frameAncestors = (r: Response) => /frame-ancestors ([^;]+)/.exec(r.headers.get('content-security-policy') ?? '')?.[1];

t.test('by default no page may be framed: frame-ancestors none and X-Frame-Options DENY', async (t) => {
  const p = await proxyWith(t, '');
  const page = await fetch(await p.connectLink('alice', 'keys'), { headers: html });
  t.equal(page.status, 200);
  t.equal(frameAncestors(page), "'none'");
  t.equal(page.headers.get('x-frame-options'), 'DENY');
  t.equal(page.headers.get('cache-control'), 'no-store');
  const signIn = await fetch(`${p.url}/ui/sign-in`);
  t.equal(frameAncestors(signIn), "'none'");
  t.equal(signIn.headers.get('x-frame-options'), 'DENY');
});

t.test('connect.frame_ancestors: the connect pages name those origins and drop X-Frame-Options; the dashboard stays unframeable', async (t) => {
  const p = await proxyWith(t, 'connect:\n  frame_ancestors: ["https://app.example.com/", "https://*.tenant.example"]\n');
  const want = 'https://app.example.com https://*.tenant.example';
  const url = await p.connectLink('alice', 'keys');
  const page = await fetch(url, { headers: html });
  t.equal(page.status, 200);
  t.equal(frameAncestors(page), want, 'the connect page');
  t.equal(page.headers.get('x-frame-options'), null, 'X-Frame-Options cannot name origins: left out');
  t.match(page.headers.get('content-security-policy'), /default-src 'none'; .*base-uri 'none'$/, 'the rest of the policy unchanged');

  const expired = await fetch(`${url}x`, { headers: html });
  t.equal(expired.status, 400);
  t.equal(frameAncestors(expired), want, 'an error page of the flow, shown inside the frame');
  const callback = await fetch(`${p.url}/connect/callback?state=nothing&code=x`, { headers: html });
  t.equal(frameAncestors(callback), want, 'the callback page');

  for (const path of ['/ui/sign-in', '/ui/integrations']) {
    const r = await fetch(`${p.url}${path}`, { redirect: 'manual' });
    if (r.status === 200) {
      t.equal(frameAncestors(r), "'none'", `${path}: never framed`);
      t.equal(r.headers.get('x-frame-options'), 'DENY');
    } else t.equal(r.headers.get('location'), '/ui/sign-in', `${path}: to sign-in, which is never framed`);
  }
});
