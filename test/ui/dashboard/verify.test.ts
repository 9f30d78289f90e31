import t from 'tap';
import { get, post, signIn } from '../../support/dashboard.js';
import { configDir, startProxy, startUpstream } from '../../support/servers.js';

/** The connection page's verify button: the integration's verify request with the stored key; it only reports. */

t.test('verify from the dashboard says whether the stored key works and changes nothing', async (t) => {
  let accept = true;
  const up = await startUpstream((req, res) => {
    const ok = accept && req.headers.authorization === 'Bearer sk-good-0123456789';
    res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' }).end(ok ? '{"data":[]}' : '{"error":"Incorrect API key provided: sk-good-0123456789"}');
  });
  t.teardown(() => up.close());
  const p = await startProxy(
    configDir('store: memory\n', {
      llm: `hosts: ["127.0.0.1:${up.port}"]\nupstream: http\nauth: { type: api_key }\nverify: { path: /v1/models }\n`,
      plain: `hosts: ["127.0.0.2:${up.port}"]\nupstream: http\nauth: { type: api_key }\n`,
    }),
  );
  t.teardown(() => p.close());
  t.equal((await p.connect('alice', 'llm', { credentials: { api_key: 'sk-good-0123456789' } })).status, 200);
  t.equal((await p.connect('alice', 'plain', { credentials: { api_key: 'k' } })).status, 200);
  const { cookie, csrf } = await signIn(p);
  t.match(await (await get(p, '/ui/entities/alice/connections/llm', cookie)).text(), 'Check the credentials (verify)');
  t.notMatch(await (await get(p, '/ui/entities/alice/connections/plain', cookie)).text(), 'Check the credentials', 'no verify declared: no button');

  const good = await post(p, '/ui/entities/alice/connections/llm/verify', { csrf }, cookie);
  t.equal(good.status, 200);
  t.match(await good.text(), /<h1>The credentials work<\/h1>.*HTTP 200/s);

  accept = false;
  const bad = await post(p, '/ui/entities/alice/connections/llm/verify', { csrf }, cookie);
  const text = await bad.text();
  t.match(text, /<h1>The credentials were refused<\/h1>.*HTTP 401/s);
  t.notMatch(text, 'sk-good', 'the key the upstream echoed is not shown');
  t.match(await (await p.admin('GET', '/api/entities/alice/connections/llm')).json(), { status: 'active' }, 'the connection is unchanged');

  t.equal((await post(p, '/ui/entities/alice/connections/llm/verify', { csrf: 'forged' }, cookie)).status, 400, 'CSRF as everywhere');
  t.equal((await post(p, '/ui/entities/alice/connections/plain/verify', { csrf }, cookie)).status, 400, 'nothing to verify');
});
