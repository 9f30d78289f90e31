import t, { type Test } from 'tap';
import pino from 'pino';
import { exchangeToken, type TokenResponseMap } from '../../src/auth/token-exchange.js';
import { LogCapture, startUpstream } from '../support/servers.js';

// The jwt_bearer scheme around it is in test/auth/jwt-bearer.test.ts; this is the call and the
// mapping of the answer, against a real token endpoint on loopback.
const now = 1_700_000_000_000;

async function endpoint(t: Test, status: number, body: string | object) {
  const up = await startUpstream((_req, res) => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(typeof body === 'string' ? body : JSON.stringify(body));
  });
  t.teardown(() => up.close());
  return up;
}

const call = (url: string, map: TokenResponseMap = { access_token: 'access_token', expires_in: 'expires_in' }, extra: object = {}) =>
  exchangeToken({ url: `${url}/token?client_secret=hidden`, method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}', ...extra }, map, now);

t.test('the token and its lifetime, at the mapped (dotted) paths; the request goes as given', async (t) => {
  const up = await endpoint(t, 200, { data: { token: 'at-1', ttl: '60' } });
  const r = await call(up.origin, { access_token: 'data.token', expires_in: 'data.ttl' });
  t.same(r, { access_token: 'at-1', expires_at: now + 60_000 });
  t.match(up.seen[0], { method: 'POST', url: '/token?client_secret=hidden', body: Buffer.from('{"a":1}') });
});

t.test('expires_at as unix seconds or ISO 8601; no lifetime at all is none', async (t) => {
  const a = await endpoint(t, 200, { access_token: 'x', exp: 1_800_000_000 });
  t.equal((await call(a.origin, { access_token: 'access_token', expires_at: 'exp' })).expires_at, 1_800_000_000_000);
  const b = await endpoint(t, 200, { access_token: 'x', exp: '2030-01-01T00:00:00Z' });
  t.equal((await call(b.origin, { access_token: 'access_token', expires_at: 'exp' })).expires_at, Date.parse('2030-01-01T00:00:00Z'));
  const c = await endpoint(t, 200, { access_token: 'x' });
  t.equal((await call(c.origin)).expires_at, undefined);
});

t.test('unusable answers are refresh_failed naming the endpoint without its query', async (t) => {
  const cases: Array<[number, string | object, RegExp, TokenResponseMap?]> = [
    [200, 'not json', /answered 200 without a JSON object/],
    [200, { token: 'x' }, /without a usable token at "access_token"/],
    [200, { access_token: '' }, /without a usable token/],
    [200, { access_token: 'a\r\nX-Evil: 1' }, /without a usable token/],
    [200, { access_token: 'x', expires_in: 'soon' }, /an expires_in that is not a number of seconds/],
    [200, { access_token: 'x', exp: 'someday' }, /an exp that is neither ISO 8601 nor unix seconds/, { access_token: 'access_token', expires_at: 'exp' }],
  ];
  for (const [status, body, message, map] of cases) {
    const up = await endpoint(t, status, body);
    const err = await call(up.origin, map).then(
      () => undefined,
      (e: Error & { code?: string }) => e,
    );
    t.match(err, { code: 'refresh_failed', message }, String(message));
    t.notMatch(err?.message ?? '', /hidden|client_secret/, 'the query (which may hold a secret) is not shown');
  }
});

t.test("a refusal: the provider's error code is shown, its free text only logged, redacted", async (t) => {
  const assertion = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln';
  const up = await endpoint(t, 400, { error: 'invalid_grant', error_description: `bad assertion ${assertion} for secret-entity` });
  const logs = new LogCapture();
  const err = await call(up.origin, undefined, { log: pino({ level: 'debug' }, logs), redact: ['secret-entity'] }).catch((e: Error) => e);
  t.match(err, { code: 'refresh_failed', message: /token endpoint http:\/\/127\.0\.0\.1:\d+\/token answered 400: invalid_grant$/ });
  t.match(logs.text, /the token endpoint refused the exchange/);
  t.match(logs.text, /bad assertion \[redacted\] for \[redacted\]/);
  t.notMatch(logs.text, assertion);
  const odd = await endpoint(t, 500, { error: 'not a code <script>' });
  t.match(await call(odd.origin).catch((e: Error) => e), { message: /answered 500$/ }, 'a free-text "error" is not shown as a code');
});

t.test('an endpoint that cannot be reached, or answers too much, is refresh_failed', async (t) => {
  const up = await endpoint(t, 200, { access_token: 'x' });
  await up.close();
  await t.rejects(call(up.origin), { code: 'refresh_failed', message: /could not be reached \(ECONNREFUSED\)/ });
  const big = await endpoint(t, 200, `{"access_token":"x","pad":"${'x'.repeat(1024 * 1024)}"}`);
  await t.rejects(call(big.origin), { code: 'refresh_failed', message: /answered more than 1048576 bytes/ });
});
