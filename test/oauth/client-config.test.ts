import t from 'tap';
import { refreshBeforeMs, withParams, type OAuthAuthConfig } from '../../src/oauth/client-config.js';
import { MissingValueError } from '../../src/config/template.js';

const config = (extra: Partial<OAuthAuthConfig> = {}) =>
  ({ type: 'oauth2', client_id: 'cid', token_url: 'https://{{subdomain}}.example.com/oauth/token', authorize_url: 'https://{{subdomain}}.example.com/oauth/authorize', ...extra }) as OAuthAuthConfig;

t.test('refresh_before: 60 s unless configured', async (t) => {
  t.equal(refreshBeforeMs(config()), 60_000);
  t.equal(refreshBeforeMs(config({ refresh_before: 300 })), 300_000);
  t.equal(refreshBeforeMs(config({ refresh_before: 0 })), 0);
});

t.test('withParams fills both URLs; the rest of the config is kept', async (t) => {
  const c = withParams(config(), { subdomain: 'acme' });
  t.equal(c.token_url, 'https://acme.example.com/oauth/token');
  t.equal(c.authorize_url, 'https://acme.example.com/oauth/authorize');
  t.equal(c.client_id, 'cid');
  t.equal(withParams(config({ authorize_url: undefined }), { subdomain: 'a' }).authorize_url, undefined);
});

t.test('a param is percent-encoded: it cannot add a path, a query or another host', async (t) => {
  const tok = config({ token_url: 'https://api.example.com/{{tenant}}/token', authorize_url: undefined });
  t.equal(withParams(tok, { tenant: '../admin' }).token_url, 'https://api.example.com/..%2Fadmin/token');
  t.equal(withParams(tok, { tenant: 'a?x=1#f' }).token_url, 'https://api.example.com/a%3Fx%3D1%23f/token');
  t.equal(withParams(tok, { tenant: 'evil.test/@x' }).token_url, 'https://api.example.com/evil.test%2F%40x/token');
});

t.test('a missing param is an error, never an empty URL part', async (t) => {
  let err: unknown;
  try {
    withParams(config(), {});
  } catch (e) {
    err = e;
  }
  t.ok(err instanceof MissingValueError);
  t.match(err, { missing: 'subdomain' });
});
