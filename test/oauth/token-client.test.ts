import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { OAuthServer } from '../support/oauth-server.js';
import { parseTokenResponse, requestToken, TokenEndpointError } from '../../src/oauth/token-client.js';
import { applyTokenSet } from '../../src/oauth/token-set.js';
import { escapeHtml } from '../../src/oauth/pages.js';
import { Backoff } from '../../src/oauth/backoff.js';
import { SingleFlight } from '../../src/oauth/single-flight.js';

const rejects = (fn: () => unknown, kind: 'rejected' | 'transient', oauthError?: string) => {
  try {
    fn();
  } catch (err) {
    return err instanceof TokenEndpointError && err.kind === kind && (oauthError === undefined || err.oauthError === oauthError);
  }
  return false;
};

t.test('JSON, form-encoded, nested and minimal token answers', async (t) => {
  t.same(parseTokenResponse(200, 'application/json', '{"access_token":"a","refresh_token":"r","expires_in":3600,"token_type":"bearer","scope":"x y"}'), {
    access_token: 'a',
    refresh_token: 'r',
    expires_in: 3600,
    scope: 'x y',
    token_type: 'bearer',
  });
  // GitHub without Accept: application/json
  t.same(parseTokenResponse(200, 'application/x-www-form-urlencoded; charset=utf-8', 'access_token=gho_abc&scope=repo%2Cgist&token_type=bearer'), {
    access_token: 'gho_abc',
    scope: 'repo,gist',
    token_type: 'bearer',
  });
  t.same(parseTokenResponse(200, 'text/plain', 'access_token=a&expires_in=60'), { access_token: 'a', expires_in: 60 }, 'form with a wrong content type');
  // Slack: the user token is nested
  const slack = '{"ok":true,"access_token":"xoxb-bot","authed_user":{"id":"U1","access_token":"xoxp-user","scope":"chat:write"}}';
  t.same(parseTokenResponse(200, 'application/json', slack, { access_token: 'authed_user.access_token', scope: 'authed_user.scope' }), {
    access_token: 'xoxp-user',
    scope: 'chat:write',
  });
  t.same(parseTokenResponse(200, 'application/json', '{"access_token":"only"}'), { access_token: 'only' }, 'no token_type, no expires_in');
  t.same(parseTokenResponse(200, 'application/json', '{"access_token":"a","expires_in":"bogus"}'), { access_token: 'a' });
});

t.test('errors: rejected for good or transient', async (t) => {
  t.ok(rejects(() => parseTokenResponse(400, 'application/json', '{"error":"invalid_grant"}'), 'rejected', 'invalid_grant'));
  t.ok(rejects(() => parseTokenResponse(401, 'application/json', '{"error":"invalid_client"}'), 'rejected', 'invalid_client'));
  t.ok(rejects(() => parseTokenResponse(200, 'application/x-www-form-urlencoded', 'error=bad_refresh_token&error_description=x'), 'rejected', 'invalid_grant'), 'GitHub: 200 with an error');
  t.ok(rejects(() => parseTokenResponse(400, 'application/json', '{"error":"invalid_request"}'), 'transient', 'invalid_request'));
  t.ok(rejects(() => parseTokenResponse(503, 'application/json', '{"error":"invalid_grant"}'), 'transient'), 'a 5xx is never final');
  t.ok(rejects(() => parseTokenResponse(500, 'text/html', '<html>down</html>'), 'transient'));
  t.ok(rejects(() => parseTokenResponse(200, 'text/html', '<html>login</html>'), 'transient'), 'garbage');
  t.ok(rejects(() => parseTokenResponse(200, 'application/json', '{"access_token":'), 'transient'), 'broken JSON');
  t.ok(rejects(() => parseTokenResponse(200, 'application/json', '[1]'), 'transient'));
  t.ok(rejects(() => parseTokenResponse(200, 'application/json', '{"token_type":"bearer"}'), 'transient'), 'no access token');
  t.ok(rejects(() => parseTokenResponse(200, 'application/json', '{"access_token":"a\\r\\nX-Evil: 1"}'), 'transient'), 'CR/LF in a token');
  t.ok(rejects(() => parseTokenResponse(302, '', ''), 'transient'));
});

t.test('applyTokenSet keeps the old refresh token and scopes when the answer has none', async (t) => {
  const prev = { credentials: { access_token: 'old', refresh_token: 'r1' }, scopes: ['a'] };
  t.same(applyTokenSet(prev, { access_token: 'new' }, 1000), { credentials: { access_token: 'new', refresh_token: 'r1' }, expires_at: undefined, scopes: ['a'] });
  t.same(applyTokenSet(prev, { access_token: 'n', refresh_token: 'r2', expires_in: 10, scope: 'x,y' }, 1000), {
    credentials: { access_token: 'n', refresh_token: 'r2' },
    expires_at: 11_000,
    scopes: ['x', 'y'],
  });
  t.same(applyTokenSet(undefined, { access_token: 'n' }, 0).credentials, { access_token: 'n' });
});

t.test('helpers', async (t) => {
  t.equal(escapeHtml(`<a href="x">'&'</a>`), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  const b = new Backoff(1000, 4000);
  t.equal(b.waitFor('k', 0), 0);
  b.failed('k', 0);
  t.equal(b.waitFor('k', 0), 1000);
  b.failed('k', 0);
  b.failed('k', 0);
  b.failed('k', 0);
  t.equal(b.waitFor('k', 0), 4000, 'capped');
  b.succeeded('k');
  t.equal(b.waitFor('k', 0), 0);

  const sf = new SingleFlight();
  let runs = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const job = async () => {
    runs++;
    await gate;
    return runs;
  };
  const p = Promise.all([sf.run('a', job), sf.run('a', job), sf.run('b', job)]);
  release();
  const [x, y] = await p;
  t.equal(x, y, 'the same run');
  t.equal(runs, 2, 'one per key');
  await t.rejects(sf.run('a', async () => Promise.reject(new Error('boom'))), /boom/);
  t.equal(await sf.run('a', async () => 7), 7, 'a failed run does not stick');
});

/** The kind of TokenEndpointError a call ends in ('ok' when it succeeds). */
async function failure(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    return err instanceof TokenEndpointError ? err.kind : String(err);
  }
}

t.test('requestToken against a real token endpoint: down, 5xx, garbage, silent, and a good answer', async (t) => {
  const as = await new OAuthServer().start();
  const silent = http.createServer(() => {});
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  t.teardown(async () => {
    await as.close();
    silent.closeAllConnections();
    await new Promise((r) => silent.close(r));
  });
  const client = { id: as.clientId, secret: as.clientSecret };
  const cfg = { token_url: `${as.origin}/token`, scopes: ['s1', 's2'], scope_separator: ',' };
  const ok = await requestToken(cfg, client, { type: 'client_credentials' }, { timeoutMs: 5000 });
  t.match(ok, { access_token: /^at-/, expires_in: 3600, scope: 's1,s2' });
  for (const mode of ['down', 'error500', 'garbage'] as const) {
    as.tokenEndpoint = mode;
    t.equal(await failure(requestToken(cfg, client, { type: 'client_credentials' }, { timeoutMs: 5000 })), 'transient', mode);
  }
  const port = (silent.address() as AddressInfo).port;
  const silentCall = requestToken({ token_url: `http://127.0.0.1:${port}/token` }, client, { type: 'refresh_token', refreshToken: 'r' }, { timeoutMs: 200 });
  await t.rejects(silentCall, /timed out/);
  t.equal(await failure(silentCall), 'transient');
});
