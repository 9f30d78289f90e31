import t from 'tap';
import { configDir, startProxy, startUpstream, viaProxy } from '../support/servers.js';

t.test('bearer is injected, the entity header and the client credential never reach upstream', async (t) => {
  const up = await startUpstream();
  const dir = configDir('store: memory\n', {
    demo: `hosts: ["127.0.0.1:${up.port}"]\nupstream: http\nauth: { type: bearer }\n`,
  });
  const proxy = await startProxy(dir);
  t.teardown(async () => {
    await proxy.close();
    await up.close();
  });
  const put = await proxy.connect('alice', 'demo', { credentials: { token: 'secret-token-1' } });
  t.equal(put.status, 200);
  const r = await viaProxy(proxy.port, `${up.origin}/v1/x?y=1`, { headers: { 'X-Entity-Id': 'alice', Authorization: 'Bearer spoofed' } });
  t.equal(r.status, 200);
  const seen = up.seen.at(-1)!;
  t.equal(seen.headers.authorization, 'Bearer secret-token-1');
  t.equal(seen.rawHeaders.filter((h) => h.toLowerCase() === 'authorization').length, 1);
  t.notOk('x-entity-id' in seen.headers);
  t.equal(seen.url, '/v1/x?y=1');
  t.notMatch(proxy.logs.text, /secret-token-1/);
});
