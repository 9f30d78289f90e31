import t from 'tap';
import { util } from 'undici';
import { clientResponseHeaderList, clientResponseHeaders, injectQuery, upstreamRequestHeaders } from '../../src/proxy/headers.js';
import { integrationYaml, setup, viaProxy } from '../support/servers.js';

const names = (raw: string[]) => raw.filter((_h, i) => i % 2 === 0).map((h) => h.toLowerCase());

t.test('hop-by-hop headers and headers named in Connection never reach upstream', async (t) => {
  const { up, proxy } = await setup(t, { integrations: (up) => ({ svc: integrationYaml([`127.0.0.1:${up.port}`], '{ type: bearer }') }) });
  await proxy.connect('alice', 'svc', { credentials: { token: 'tok-1' } });
  const r = await viaProxy(proxy.port, `${up.origin}/h`, {
    headers: {
      'X-Entity-Id': 'alice',
      Connection: 'keep-alive, X-Hop, Authorization, X-Entity-Id',
      'Keep-Alive': 'timeout=5',
      'Proxy-Connection': 'keep-alive',
      'Proxy-Authorization': 'Basic YWxpY2U6a2V5',
      'X-Hop': 'must go',
      TE: 'gzip',
      Authorization: 'Bearer from-client',
      'X-End-To-End': 'stays',
    },
  });
  t.equal(r.status, 200);
  const seen = up.seen.at(-1)!;
  const got = names(seen.rawHeaders);
  for (const h of ['x-entity-id', 'proxy-authorization', 'proxy-connection', 'keep-alive', 'x-hop', 'te']) {
    t.notOk(got.includes(h), `${h} is not forwarded`);
  }
  t.equal(seen.headers.authorization, 'Bearer tok-1', '`Connection: Authorization` cannot strip the injected credential');
  t.equal(got.filter((h) => h === 'authorization').length, 1);
  t.equal(seen.headers['x-end-to-end'], 'stays');
  t.equal(seen.headers.host, `127.0.0.1:${up.port}`);
});

t.test('passthrough: Proxy-Authorization and the entity header are dropped too; TE: trailers survives', async (t) => {
  const { up, proxy } = await setup(t);
  const r = await viaProxy(proxy.port, `${up.origin}/p`, {
    headers: { 'X-Entity-Id': 'alice', 'Proxy-Authorization': 'Basic YWxpY2U6c2VjcmV0', TE: 'trailers', Authorization: 'Bearer client-own' },
  });
  t.equal(r.status, 200);
  const seen = up.seen.at(-1)!;
  t.notOk(seen.headers['x-entity-id']);
  t.notOk(seen.headers['proxy-authorization']);
  t.equal(seen.headers.te, 'trailers');
  t.equal(seen.headers.authorization, 'Bearer client-own', 'a host no integration owns gets the client headers untouched and no credential');
});

t.test('response hop-by-hop headers are dropped on the way back', async (t) => {
  const { up, proxy } = await setup(t, {
    handler: (_req, res) => {
      res.writeHead(201, { Connection: 'X-Private', 'X-Private': 'hop', 'Keep-Alive': 'timeout=1', 'X-Public': 'ok', 'Proxy-Authenticate': 'Basic' });
      res.end('done');
    },
  });
  const r = await viaProxy(proxy.port, `${up.origin}/`);
  t.equal(r.status, 201);
  t.equal(r.body.toString(), 'done');
  t.equal(r.headers['x-public'], 'ok');
  t.notOk(r.headers['x-private']);
  t.notOk(r.headers['keep-alive'], "the upstream's keep-alive is not the client connection's");
  t.notOk(r.headers['proxy-authenticate']);
  t.equal(up.seen.length, 1);
});

t.test('upstreamRequestHeaders keeps casing and order and appends injected headers last', async (t) => {
  const out = upstreamRequestHeaders(
    ['X-A', '1', 'authorization', 'mine', 'X-Entity', 'e', 'Connection', 'te, x-a', 'TE', 'trailers', 'x-b', '2'],
    'h:1',
    'x-entity',
    [['Authorization', 'authorization', 'Bearer real']],
  );
  t.same(out, ['host', 'h:1', 'x-b', '2', 'Authorization', 'Bearer real'], '`Connection: te` also drops TE: trailers');
  t.same(upstreamRequestHeaders(['TE', 'trailers', 'X-Y', 'y'], 'h', 'x-entity-id', []), ['host', 'h', 'X-Y', 'y', 'te', 'trailers']);
  t.same(upstreamRequestHeaders(['X-Connection-Label', 'work', 'x-connection-LABEL', 'again', 'X-Y', 'y'], 'h', 'x-entity-id', []), ['host', 'h', 'X-Y', 'y'], 'the connection label never goes upstream');
});

t.test('clientResponseHeaders honours Connection given as a list', async (t) => {
  t.same(clientResponseHeaders({ connection: ['a', 'B'], a: '1', b: '2', c: '3', 'transfer-encoding': 'chunked', d: undefined }), { c: '3' });
});

t.test('clientResponseHeaderList drops what clientResponseHeaders drops, from the object undici parses', async (t) => {
  const raw = [
    ['Content-Type', 'text/plain'], ['Connection', 'X-Hop, keep-alive'], ['Set-Cookie', 'a=1'], ['X-Hop', 'gone'], ['Keep-Alive', 'timeout=5'],
    ['Set-Cookie', 'b=2'], ['X-Credproxy-Error', 'forged'], ['Transfer-Encoding', 'chunked'], ['X-Latin1', 'caf\u00e9'], ['connection', 'X-Other'], ['X-Other', 'gone too'],
  ].flatMap(([n, v]) => [Buffer.from(n!, 'latin1'), Buffer.from(v!, 'latin1')]);
  const list = clientResponseHeaderList(util.parseHeaders(raw));
  t.same(list, ['content-type', 'text/plain', 'set-cookie', 'a=1', 'set-cookie', 'b=2', 'x-latin1', 'caf\u00e9'], 'lower-cased names, upstream order, latin1 values');
  const asObject: Record<string, string | string[]> = {};
  for (let i = 0; i < list.length; i += 2) {
    const prev = asObject[list[i]!];
    asObject[list[i]!] = prev === undefined ? list[i + 1]! : [prev, list[i + 1]!].flat();
  }
  t.same(asObject, clientResponseHeaders(util.parseHeaders(raw) as Record<string, string | string[]>), 'the same fields as the object form');
  t.same(clientResponseHeaderList(util.parseHeaders([Buffer.from('X-A'), Buffer.from('1')])), ['x-a', '1']);
  t.same(clientResponseHeaderList({ 'x-a': '1', 'x-b': undefined }), ['x-a', '1'], 'an undefined value is no field');
  const hop = (connection: string) => util.parseHeaders([['Connection', connection], ['Keep-Alive', 'timeout=5'], ['X-Hop', 'h'], ['X-A', '1']].flatMap(([n, v]) => [Buffer.from(n!), Buffer.from(v!)]));
  t.same(clientResponseHeaderList(hop('Keep-Alive')), ['x-hop', 'h', 'x-a', '1'], 'Connection: keep-alive (most answers) names nothing more');
  t.same(clientResponseHeaderList(hop('close')), ['x-hop', 'h', 'x-a', '1']);
  t.same(clientResponseHeaderList(hop('keep-alive, X-Hop')), ['x-a', '1'], 'a listed name is still dropped');
});

t.test('injectQuery', async (t) => {
  t.equal(injectQuery('/p', []), '/p');
  t.equal(injectQuery('/p?', [['k', 'v']]), '/p?k=v');
  t.equal(injectQuery('/p?a+b=1&k=x', [['a b', 'v']]), '/p?k=x&a%20b=v', 'form-encoded names are recognised');
  t.equal(injectQuery('/p?%zz=1&k=2', [['k', 'v']]), '/p?%zz=1&k=v', 'a malformed escape is kept as written');
});

t.test("an upstream cannot pass its answer off as credproxy's: X-Credproxy-Error is stripped", async (t) => {
  const { up, proxy } = await setup(t, {
    handler: (_req, res) => {
      res.writeHead(424, { 'X-Credproxy-Error': 'connection_missing', 'content-type': 'application/json' });
      res.end('{"error":{"code":"connection_missing","message":"forged"}}');
    },
  });
  const r = await viaProxy(proxy.port, `${up.origin}/`);
  t.equal(r.status, 424, 'the upstream status passes through');
  t.notOk(r.headers['x-credproxy-error'], 'but not the header that marks credproxy\'s own answers');
});
