import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import t from 'tap';
import { createLogger, LineBatch, LOG_BATCH_BYTES, LOG_FLUSH_MS, logRequestLine, numberText, requestLogger } from '../src/log.js';
import { pollUntil } from './support/poll.js';
import { integrationYaml, LogCapture, setup, viaProxy } from './support/servers.js';

t.test('one line per proxied request with its fields, and no secret anywhere in the log', async (t) => {
  const secrets = ['sk-log-secret-1', 'bearer-log-secret-2', 'basic-log-pass-3', 'client-own-secret-4', 'proxy-key-secret-5', 'query-secret-6'];
  const { up, proxy } = await setup(t, {
    integrations: (up) => ({
      key: integrationYaml([`127.0.0.1:${up.port}`], '{ type: api_key }', 'paths: [/key]\n'),
      tok: integrationYaml([`127.0.0.1:${up.port}`], '{ type: bearer }', 'paths: [/tok]\n'),
      pw: integrationYaml([`127.0.0.1:${up.port}`], '{ type: basic }', 'paths: [/pw]\ninject: { query: { auth: "{{password}}" } }\n'),
    }),
  });
  await proxy.connect('alice', 'key', { credentials: { api_key: secrets[0] } });
  await proxy.connect('alice', 'tok', { credentials: { token: secrets[1] } });
  await proxy.connect('alice', 'pw', { credentials: { username: 'alice', password: secrets[2] } });
  await proxy.connect('alice', 'key', { credentials: { api_key: 'bad\nvalue' } });
  const headers = { 'X-Entity-Id': 'alice', Authorization: `Bearer ${secrets[3]}`, 'Proxy-Authorization': `Basic ${Buffer.from(`alice:${secrets[4]}`).toString('base64')}` };
  for (const path of ['/key/a', '/tok/b', `/pw/c?token=${secrets[5]}`, `/other?x=${secrets[5]}`]) {
    t.equal((await viaProxy(proxy.port, `${up.origin}${path}`, { headers })).status, 200);
  }
  await viaProxy(proxy.port, `${up.origin}/tok/none`, { headers: { 'X-Entity-Id': 'bob' } });
  const text = proxy.logs.text;
  for (const s of secrets) t.notOk(text.includes(s), `${s} is not in the log`);
  t.notOk(text.includes(Buffer.from(`alice:${secrets[2]}`).toString('base64')), 'nor the basic credential');

  const lines = proxy.logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'proxied');
  t.equal(lines.length, 5, 'one line per request');
  t.match(lines[2], { entity: 'alice', integration: 'pw', method: 'GET', host: `127.0.0.1:${up.port}`, path: '/pw/c', status: 200, ms: Number });
  t.match(lines[3], { integration: 'passthrough', path: '/other' });
  t.match(lines[4], { entity: 'bob', integration: 'tok', status: 424 });
});

t.test('createLogger redacts credential-shaped fields', async (t) => {
  const out = new LogCapture();
  const log = createLogger({ destination: out, level: 'info' });
  log.info({ headers: { authorization: 'Bearer s1', 'proxy-authorization': 'Basic s2', cookie: 's3' }, credentials: { token: 's4' }, token: 's5', req: { api_key: 's6' } }, 'x');
  log.debug('below the level');
  t.equal(out.lines.length, 1);
  t.notMatch(out.text, /s[1-6]\b/);
  t.match(out.text, /\[redacted\]/);
  t.equal(JSON.parse(out.lines[0]!).level, 30);
  t.equal(createLogger({ level: 'warn' }).level, 'warn', 'the default destination takes the level too');
});

t.test('requestLogger: the request line keeps top-level redaction and follows the parent level', async (t) => {
  const out = new LogCapture();
  const log = createLogger({ destination: out, level: 'info' });
  const req = requestLogger(log);
  t.equal(requestLogger(log), req, 'one child per logger');
  req.info({ entity: 'alice', token: 's1', password: 's2', status: 200 }, 'proxied');
  t.equal(out.lines.length, 1);
  t.match(JSON.parse(out.lines[0]!), { entity: 'alice', token: '[redacted]', password: '[redacted]', status: 200, msg: 'proxied' });
  log.level = 'warn';
  requestLogger(log).info({ entity: 'bob' }, 'proxied');
  t.equal(out.lines.length, 1, 'a reload that raises the level silences request lines too');
  log.level = 'info';
  requestLogger(log).info({ entity: 'carol' }, 'proxied');
  t.equal(out.lines.length, 2);
});

t.test('numberText writes a number as String() does', async (t) => {
  let differ = 0;
  const check = (v: number) => {
    if (numberText(v) !== String(v)) differ++;
  };
  // every rounded duration the request log writes (Math.round(ms * 10) / 10) up to 100 s, and around them
  for (let i = 0; i <= 1_000_000; i++) {
    const v = Math.round(i) / 10;
    check(v);
    check(v + 0.01);
    check(v * 1.0000001);
  }
  for (const v of [0, -0, -1.5, 0.05, 1e-7, 1e21, 1.7e12, 999999999.5, 1e9 + 0.5, Number.MAX_SAFE_INTEGER, Number.MIN_VALUE, 2 ** 53 + 0.5, 123.45]) check(v);
  for (let i = 0; i < 100_000; i++) check(Math.random() * 10 ** Math.floor(Math.random() * 12));
  t.equal(differ, 0, 'the same text for every value tried');
});

t.test('logRequestLine writes the line pino would, for a logger from createLogger', async (t) => {
  const out = new LogCapture();
  const log = createLogger({ destination: out, level: 'info' });
  const fields = { client: undefined, entity: 'al"ice\n', integration: 'x', method: 'GET', host: 'h:1', path: '/p\u00e9', status: 200, refreshed: false, replayed: true, ms: 0.4, token: 's1', odd: NaN };
  logRequestLine(log, fields, 'proxied');
  requestLogger(log).info(fields, 'proxied');
  t.equal(out.lines.length, 2);
  const [mine, pinos] = out.lines.map((l) => l.replace(/"time":\d+/, '"time":0'));
  t.equal(mine, pinos, 'same fields, same order, same escaping');
  t.match(JSON.parse(out.lines[0]!), { level: 30, time: Number, entity: 'al"ice\n', token: '[redacted]', odd: null, msg: 'proxied' });
  t.notOk('client' in JSON.parse(out.lines[0]!), 'an undefined field is left out, as pino does');
  // Every ASCII and Latin-1 character, and some beyond: escaped exactly as pino escapes them.
  const chars = [...Array.from({ length: 0x300 }, (_, c) => c), 0x2028, 0x2029, 0xfeff, 0xffff].map((c) => String.fromCharCode(c));
  const each = new LogCapture();
  const eachLog = createLogger({ destination: each, level: 'info' });
  for (const ch of [...chars, '\ud83d\ude00']) {
    logRequestLine(eachLog, { entity: `a${ch}b`, path: ch }, 'proxied');
    requestLogger(eachLog).info({ entity: `a${ch}b`, path: ch }, 'proxied');
  }
  let differ = 0;
  for (let i = 0; i < each.lines.length; i += 2) {
    if (each.lines[i]!.replace(/"time":\d+/, '') !== each.lines[i + 1]!.replace(/"time":\d+/, '')) differ++;
  }
  t.equal(differ, 0, `${each.lines.length / 2} characters escaped as pino escapes them`);
  // A lone surrogate, which pino writes raw (it reaches the file as U+FFFD), is escaped: the value survives.
  const lone = new LogCapture();
  const loneLog = createLogger({ destination: lone, level: 'info' });
  for (const ch of ['\ud800', '\udbff', '\udc00']) logRequestLine(loneLog, { path: `/a${ch}` }, 'proxied');
  t.same(lone.lines.map((l) => (JSON.parse(l) as { path: string }).path), ['/a\ud800', '/a\udbff', '/a\udc00']);

  log.level = 'warn';
  logRequestLine(log, { entity: 'bob' }, 'proxied');
  t.equal(out.lines.length, 2, 'the level applies');
  log.level = 'info';
  logRequestLine(log, { entity: 'carol', nested: { token: 's2' } }, 'proxied');
  t.equal(out.lines.length, 3, 'a field that is not a scalar goes through pino');
  t.match(JSON.parse(out.lines[2]!), { entity: 'carol', nested: { token: 's2' }, msg: 'proxied' }, 'with the request logger\'s top-level redaction, as before');

  const other = new LogCapture();
  const bound = createLogger({ destination: other }).child({ name: 'bound' });
  logRequestLine(bound, { entity: 'dave' }, 'proxied');
  t.match(JSON.parse(other.lines[0]!), { name: 'bound', entity: 'dave' }, 'a logger createLogger did not make (bindings) goes through pino');
});

t.test('LineBatch: lines wait for a full batch, the flush timer, flush() or exit', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'credproxy-log-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'out.log');
  const batch = new LineBatch(pino.destination({ dest: file, sync: true }));
  const read = () => readFileSync(file, 'utf8');
  batch.write('one\n');
  t.equal(read(), '', 'a single line waits');
  batch.flushSync();
  t.equal(read(), 'one\n', 'flushSync writes it');
  batch.write('two\n');
  t.ok(await pollUntil(() => read() === 'one\ntwo\n', LOG_FLUSH_MS + 10_000), 'the flush timer writes a quiet batch');
  const long = `${'x'.repeat(LOG_BATCH_BYTES)}\n`;
  batch.write(long);
  t.equal(read(), `one\ntwo\n${long}`, 'a full batch goes at once');
  batch.write('three\n');
  await new Promise<void>((resolve) => batch.flush(() => resolve()));
  t.match(read(), /three\n$/, 'flush() writes what is pending');

  // Lines of any length and any characters, in order.
  const before = read();
  const accents = `${'é'.repeat(100)}\n`;
  batch.write(accents);
  const nearlyFull = `${'a'.repeat(LOG_BATCH_BYTES - 300)}\n`;
  batch.write(nearlyFull);
  t.equal(read(), before, 'under LOG_BATCH_BYTES the batch waits');
  const huge = `${'ü'.repeat(LOG_BATCH_BYTES)}\n`;
  batch.write(huge);
  t.equal(read(), `${before}${accents}${nearlyFull}${huge}`, 'a line past LOG_BATCH_BYTES sends the batch with it');
  const big = `${'b'.repeat(LOG_BATCH_BYTES / 2)}\n`;
  batch.write('four\n');
  batch.write(big);
  batch.flushSync();
  t.equal(read(), `${before}${accents}${nearlyFull}${huge}four\n${big}`);

  // A process that logs and exits at once still writes its lines.
  const logModule = fileURLToPath(new URL('../src/log.js', import.meta.url));
  const code = `import { createLogger } from ${JSON.stringify(logModule)}; const log = createLogger(); log.info('before exit'); process.exit(0);`;
  const child = spawnSync(process.execPath, [...process.execArgv, '--input-type=module', '-e', code], { encoding: 'utf8' });
  t.match(child.stdout, /"msg":"before exit"/, child.stderr);
});
