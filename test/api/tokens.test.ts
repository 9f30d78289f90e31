import t from 'tap';
import { errorOf, integrationYaml, setup } from '../support/servers.js';

t.test('POST /api/entities/{entity}/tokens and DELETE /api/tokens/{id}', async (t) => {
  const { proxy } = await setup(t, { integrations: (up) => ({ svc: integrationYaml([`127.0.0.1:${up.port}`], '{ type: bearer }') }) });
  const res = await proxy.admin('POST', '/api/entities/alice/tokens', { integrations: ['svc'], ttl: 120 });
  t.equal(res.status, 200);
  const body = (await res.json()) as { id: string; token: string; expires_at: string; integrations: string[] };
  t.match(body.token, /^cpx_/);
  t.match(body.id, /^tok_/);
  t.same(body.integrations, ['svc']);
  const left = Date.parse(body.expires_at) - Date.now();
  t.ok(left > 60_000 && left <= 120_000, 'expires after ttl seconds');
  t.notMatch(proxy.logs.text, body.token.slice(4), 'the token is never logged');

  const plain = await proxy.admin('POST', '/api/entities/bob/tokens');
  t.equal(plain.status, 200, 'no body: every integration, default lifetime');

  for (const [bad, why] of [
    [{ integrations: ['nope'] }, /no integration named "nope"/],
    [{ integrations: [] }, /non-empty list/],
    [{ integrations: 'svc' }, /non-empty list/],
    [{ ttl: 0 }, /ttl must be/],
    [{ ttl: 1.5 }, /ttl must be/],
    [{ ttl: 10 ** 9 }, /ttl must be/],
    [{ scope: 'x' }, /unknown key scope/],
  ] as const) {
    const e = errorOf({ status: 0, headers: {}, body: Buffer.from(await (await proxy.admin('POST', '/api/entities/alice/tokens', bad)).text()) });
    t.equal(e.code, 'bad_request', JSON.stringify(bad));
    t.match(e.message, why);
  }
  const badEntity = await proxy.admin('POST', '/api/entities/-x/tokens', {});
  t.equal(badEntity.status, 400);
  const noAdmin = await fetch(`${proxy.url}/api/entities/alice/tokens`, { method: 'POST' });
  t.equal(noAdmin.status, 401);

  t.equal((await proxy.admin('DELETE', `/api/tokens/${body.id}`)).status, 204);
  t.equal((await proxy.admin('DELETE', `/api/tokens/${body.id}`)).status, 404, 'revoked already');
  t.equal((await fetch(`${proxy.url}/api/tokens/${body.id}`, { method: 'DELETE' })).status, 401);
});
