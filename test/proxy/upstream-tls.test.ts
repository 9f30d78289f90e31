import t from 'tap';
import { errorOf, LOOPBACK_EGRESS, setup, TEST_CERT, viaProxy } from '../support/servers.js';

/** `upstream: https` (the default): a plain-http request leaves credproxy over TLS, so the credential never travels in clear text. */
t.test('upstream: https upgrades plain-http requests; the upstream CA comes from tls.upstream_ca', async (t) => {
  const { up, proxy } = await setup(t, {
    tls: true,
    settings: `store: memory\ntls: { upstream_ca: ${JSON.stringify(TEST_CERT)} }\n${LOOPBACK_EGRESS}`,
    integrations: (up) => ({ secure: `hosts: ["127.0.0.1:${up.port}"]\nauth: { type: bearer }\n` }),
  });
  await proxy.connect('alice', 'secure', { credentials: { token: 'tls-only-token' } });
  const r = await viaProxy(proxy.port, `http://127.0.0.1:${up.port}/over-tls`, { headers: { 'X-Entity-Id': 'alice' } });
  t.equal(r.status, 200, 'the TLS-only upstream answered: the request was upgraded');
  t.equal(up.seen.at(-1)!.headers.authorization, 'Bearer tls-only-token');
  t.equal(up.seen.at(-1)!.url, '/over-tls');

  const passthrough = await viaProxy(proxy.port, `https://localhost:${up.port}/direct`);
  t.equal(passthrough.status, 200, 'an https:// passthrough target is fetched over TLS with the same trust');
  t.notOk(up.seen.at(-1)!.headers.authorization);
});

t.test('without the CA the upstream certificate is refused: 502, nothing sent', async (t) => {
  const { up, proxy } = await setup(t, {
    tls: true,
    integrations: (up) => ({ secure: `hosts: ["127.0.0.1:${up.port}"]\nauth: { type: bearer }\n` }),
  });
  await proxy.connect('alice', 'secure', { credentials: { token: 'tls-only-token' } });
  const e = errorOf(await viaProxy(proxy.port, `http://127.0.0.1:${up.port}/`, { headers: { 'X-Entity-Id': 'alice' } }));
  t.same([e.status, e.code], [502, 'upstream_error']);
  t.equal(up.seen.length, 0, 'the credential never reached a server whose certificate did not verify');
});
