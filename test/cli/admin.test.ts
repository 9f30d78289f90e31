import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import t from 'tap';
import { runAdminCommand, type CliIO } from '../../src/cli/admin.js';
import { ADMIN, configDir, startProxy, startUpstream, type TestProxy } from '../support/servers.js';

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a CLI command in this process, as the binary does, capturing its output. */
async function cli(argv: string[], opts: { env?: NodeJS.ProcessEnv; stdin?: string } = {}): Promise<Ran> {
  let stdout = '';
  let stderr = '';
  const io: CliIO = {
    stdout: (s) => (stdout += s),
    stderr: (s) => (stderr += s),
    env: opts.env ?? { CREDPROXY_ADMIN_TOKEN: ADMIN },
    readStdin: async () => opts.stdin ?? '',
  };
  const code = await runAdminCommand(argv, io);
  return { code, stdout, stderr };
}

/**
 * Runs the published entry point (bin/credproxy.js, on the build `npm test` makes first) in a
 * child process: exit codes as a shell sees them.
 */
const BIN = join(process.cwd(), 'bin', 'credproxy.js');
const built = existsSync(join(process.cwd(), 'dist', 'src', 'cli.js'));
function binary(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...argv],
      { env: { PATH: process.env.PATH, ...env }, cwd: process.cwd() },
      (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** A port nothing listens on: bound, then closed. */
async function deadPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

let proxy: TestProxy;
t.before(async () => {
  const dir = configDir('store: memory\n', {
    demo: 'description: a demo API\nhosts: ["127.0.0.1:9"]\nupstream: http\nauth: { type: bearer }\n',
    tokens: 'hosts: ["tokens.test"]\nauth:\n  type: oauth2\n  authorize_url: https://auth.test/authorize\n  token_url: https://auth.test/token\n  client_id: cid\n',
    userpass: 'hosts: ["userpass.test"]\nauth: { type: basic }\n',
    keyed: 'hosts: ["keyed.test"]\nparams:\n  - { name: region, pattern: "^[a-z]+$", default: eu }\nauth:\n  type: api_key\n  fields:\n    - { name: api_key, pattern: "^sk-", description: "the key" }\n    - { name: org, secret: false, optional: true }\n',
  });
  proxy = await startProxy(dir);
});
t.teardown(() => proxy.close());

const url = () => ['--url', proxy.url];

t.test('integrations list and show', async (t) => {
  const list = await cli(['integrations', 'list', ...url()]);
  t.equal(list.code, 0, list.stderr);
  t.match(list.stdout, /^NAME\s+HOSTS\s+SCHEMES\s+PARAMS\n/);
  t.match(list.stdout, /\ndemo\s+127\.0\.0\.1:9\s+bearer\s+-\n/);
  t.match(list.stdout, /\nkeyed\s+keyed\.test\s+api_key\s+region\n/);
  const json = await cli(['integrations', 'list', '--json', ...url()]);
  t.same((JSON.parse(json.stdout) as { integrations: Array<{ name: string }> }).integrations.map((i) => i.name), ['demo', 'keyed', 'tokens', 'userpass']);

  const show = await cli(['integrations', 'show', 'keyed', ...url()]);
  t.equal(show.code, 0);
  t.match(show.stdout, /name:\s+keyed\n/);
  t.match(show.stdout, /scheme api_key\nFIELD\s+SECRET\s+OPTIONAL\s+PATTERN\s+DESCRIPTION\napi_key\s+yes\s+no\s+\^sk-\s+the key\norg\s+no\s+yes\s+-\s+-\n/);
  const missing = await cli(['integrations', 'show', 'nope', ...url()]);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /not_found \(404\): no integration named "nope"/);
});

t.test('connections set, get, list, delete', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'credproxy-cli-'));
  writeFileSync(join(dir, 'key.txt'), 'sk-from-file\n');
  const set = await cli(['connections', 'set', 'alice', 'keyed', '--field', `api_key=@${join(dir, 'key.txt')}`, '--field', 'org=acme', '--param', 'region=us', ...url()]);
  t.equal(set.code, 0, set.stderr);
  t.match(set.stdout, /status:\s+active\n/);
  t.match(set.stdout, /fields:\s+api_key,org\n/);
  t.match(set.stdout, /params:\s+region=us\n/);
  t.notMatch(set.stdout, /sk-from-file/, 'the secret is never printed');
  const stored = await proxy.runtime.store.get('alice', 'keyed');
  t.equal(stored?.credentials.api_key, 'sk-from-file', 'the file was read, its final newline dropped');

  const viaStdin = await cli(['connections', 'set', 'alice', 'demo', '--stdin', '--json', ...url()], { stdin: '{"token": "tok-stdin"}' });
  t.equal(viaStdin.code, 0, viaStdin.stderr);
  t.match(JSON.parse(viaStdin.stdout), { entity: 'alice', integration: 'demo', scheme: 'bearer', status: 'active' });

  const get = await cli(['connections', 'get', 'alice', 'demo', ...url()]);
  t.equal(get.code, 0);
  t.match(get.stdout, /integration:\s+demo\n/);
  const list = await cli(['connections', 'list', 'alice', ...url()]);
  t.equal(list.code, 0);
  t.match(list.stdout, /^INTEGRATION\s+SCHEME\s+STATUS\s+FIELDS\s+EXPIRES\s+PARAMS\s+UPDATED\n/);
  t.match(list.stdout, /\ndemo\s+bearer\s+active\s+token\s+-\s+-\s+\d{4}-/);
  t.match(list.stdout, /\nkeyed\s+api_key\s+active\s+api_key,org\s+-\s+region=us\s+/);

  const bad = await cli(['connections', 'set', 'alice', 'keyed', '--field', 'api_key=wrong', ...url()]);
  t.equal(bad.code, 1);
  t.match(bad.stderr, /bad_request \(400\): credentials\.api_key does not match/);

  const del = await cli(['connections', 'delete', 'alice', 'demo', ...url()]);
  t.equal(del.code, 0);
  t.match(del.stdout, /deleted the connection of "alice" to "demo"/);
  const gone = await cli(['connections', 'get', 'alice', 'demo', ...url()]);
  t.equal(gone.code, 1);
  t.match(gone.stderr, /not_found \(404\)/);
  const none = await cli(['connections', 'list', 'nobody', ...url()]);
  t.equal(none.stdout, 'entity "nobody" has no connections\n');
  const delJson = await cli(['connections', 'delete', 'alice', 'keyed', '--json', ...url()]);
  t.same(JSON.parse(delJson.stdout), { deleted: true, entity: 'alice', integration: 'keyed' });
});

t.test('connections set for an OAuth token set and for basic credentials', async (t) => {
  const tokens = await cli(['connections', 'set', 'carol', 'tokens', '--stdin', ...url()], {
    stdin: JSON.stringify({ access_token: 'at-1', refresh_token: 'rt-1', expires_in: 3600, scope: 'read write', token_type: 'Bearer' }),
  });
  t.equal(tokens.code, 0, tokens.stderr);
  t.match(tokens.stdout, /fields:\s+access_token,refresh_token\n/);
  t.match(tokens.stdout, /scopes:\s+read,write\n/);
  t.match(tokens.stdout, /expires_at:\s+\d{4}-\d\d-\d\dT/);
  t.notMatch(tokens.stdout, /at-1|rt-1/);
  const both = await cli(['connections', 'set', 'carol', 'tokens', '--stdin', ...url()], { stdin: JSON.stringify({ access_token: 'a', expires_in: 1, expires_at: 2 }) });
  t.equal(both.code, 1);
  t.match(both.stderr, /give expires_at or expires_in, not both/);

  const basic = await cli(['connections', 'set', 'carol', 'userpass', '--field', 'username=carol', '--field', 'password=pw:with:colons', ...url()]);
  t.equal(basic.code, 0, basic.stderr);
  t.match(basic.stdout, /fields:\s+password,username\n/);
  const colon = await cli(['connections', 'set', 'carol', 'userpass', '--field', 'username=a:b', '--field', 'password=x', ...url()]);
  t.equal(colon.code, 1);
  t.match(colon.stderr, /username must not contain ":"/);
  const list = await cli(['connections', 'list', 'carol', ...url()]);
  t.match(list.stdout, /\ntokens\s+oauth2\s+active\s+access_token,refresh_token\s+\d{4}-/);
  t.match(list.stdout, /\nuserpass\s+basic\s+active\s+password,username\s+-/);
});

t.test('connections connect-link prints a link for an OAuth integration, and for a bearer one (its page asks for the token), and says why it cannot for an unknown one', async (t) => {
  const ok = await cli(['connections', 'connect-link', 'alice', 'tokens', ...url()]);
  t.equal(ok.code, 0, ok.stderr);
  t.match(ok.stdout, /\/connect\/tokens\?token=/);
  const json = await cli(['connections', 'connect-link', 'alice', 'tokens', '--json', ...url()]);
  t.match(JSON.parse(json.stdout), { connect_url: /\/connect\/tokens\?token=/, expires_at: String });
  const bearer = await cli(['connections', 'connect-link', 'alice', 'demo', ...url()]);
  t.equal(bearer.code, 0, bearer.stderr);
  t.match(bearer.stdout, /\/connect\/demo\?token=/);
  const wrong = await cli(['connections', 'connect-link', 'alice', 'demo', '--scheme', 'basic', ...url()]);
  t.equal(wrong.code, 1);
  t.match(wrong.stderr, /bad_request \(400\): integration "demo" has no scheme "basic"; it offers bearer/);
  const r = await cli(['connections', 'connect-link', 'alice', 'nope', ...url()]);
  t.equal(r.code, 1);
  t.match(r.stderr, /not_found \(404\): no integration named "nope"/);
});

t.test('connections --label: set, get, list, connect-link and delete one of several accounts', async (t) => {
  const set = await cli(['connections', 'set', 'dave', 'demo', '--label', 'work', '--field', 'token=tok-work', ...url()]);
  t.equal(set.code, 0, set.stderr);
  t.match(set.stdout, /label:\s+work\n/);
  t.equal((await proxy.runtime.store.get('dave', 'demo', { label: 'work' }))?.credentials.token, 'tok-work');
  t.equal(await proxy.runtime.store.get('dave', 'demo'), undefined, 'not the default connection');

  // Only default connections: the table is what it always was.
  t.equal((await cli(['connections', 'set', 'erin', 'demo', '--field', 'token=t', ...url()])).code, 0);
  t.match((await cli(['connections', 'list', 'erin', ...url()])).stdout, /^INTEGRATION\s+SCHEME\s+STATUS/);
  t.equal((await cli(['connections', 'set', 'dave', 'demo', '--field', 'token=tok-default', ...url()])).code, 0);
  const list = await cli(['connections', 'list', 'dave', ...url()]);
  t.match(list.stdout, /^INTEGRATION\s+LABEL\s+SCHEME\s+STATUS/);
  t.match(list.stdout, /\ndemo\s+\(default\)\s+bearer\s+active\s+token\s+/);
  t.match(list.stdout, /\ndemo\s+work\s+bearer\s+active\s+token\s+/);
  const listJson = JSON.parse((await cli(['connections', 'list', 'dave', '--json', ...url()])).stdout) as { connections: Array<{ label: string | null }> };
  t.same(listJson.connections.map((c) => c.label), [null, 'work']);

  const get = await cli(['connections', 'get', 'dave', 'demo', '--label', 'work', '--json', ...url()]);
  t.match(JSON.parse(get.stdout), { entity: 'dave', integration: 'demo', label: 'work' });
  t.match((await cli(['connections', 'get', 'dave', 'demo', ...url()])).stdout, /label:\s+\(default\)\n/);
  const missing = await cli(['connections', 'get', 'dave', 'demo', '--label', 'travel', ...url()]);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /not_found \(404\): entity "dave" has no connection labelled "travel" for "demo"/);
  const bad = await cli(['connections', 'get', 'dave', 'demo', '--label', 'no spaces', ...url()]);
  t.equal(bad.code, 1);
  t.match(bad.stderr, /bad_request \(400\): the label query parameter: a connection label is 1 to 64/);

  const link = await cli(['connections', 'connect-link', 'dave', 'tokens', '--label', 'personal', ...url()]);
  t.equal(link.code, 0, link.stderr);
  t.match(link.stdout, /\/connect\/tokens\?token=/);
  t.equal((await proxy.runtime.store.get('dave', 'tokens', { label: 'personal' }))?.status, 'initiated', 'the link is for the labelled connection');

  const del = await cli(['connections', 'delete', 'dave', 'demo', '--label', 'work', ...url()]);
  t.equal(del.code, 0);
  t.match(del.stdout, /deleted the connection of "dave" to "demo" \(label "work"\)/);
  t.equal(await proxy.runtime.store.get('dave', 'demo', { label: 'work' }), undefined);
  t.equal((await proxy.runtime.store.get('dave', 'demo'))?.credentials.token, 'tok-default', 'the default stays');
  const delJson = await cli(['connections', 'delete', 'dave', 'tokens', '--label', 'personal', '--json', ...url()]);
  t.same(JSON.parse(delJson.stdout), { deleted: true, entity: 'dave', integration: 'tokens', label: 'personal' });
  const stray = await cli(['connections', 'list', 'dave', '--label', 'work', ...url()]);
  t.equal(stray.code, 2, 'list shows every label; --label does not apply');
  t.match(stray.stderr, /--label does not apply here/);
});

t.test('usage errors exit 2', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['connections', 'get', 'alice'], /expected ENTITY INTEGRATION, got "alice"/],
    [['connections', 'frob'], /unknown subcommand "frob"/],
    [['connections', 'list', 'a', '--scheme', 'x'], /--scheme does not apply here/],
    [['connections', 'list', 'a', '--bogus'], /Unknown option '--bogus'/],
    [['connections', 'set', 'a', 'demo'], /no credentials: give --field/],
    [['connections', 'set', 'a', 'demo', '--field', 'novalue'], /--field "novalue": expected NAME=VALUE/],
    [['connections', 'set', 'a', 'demo', '--field', 'token=@/nonexistent/file'], /cannot read \/nonexistent\/file \(ENOENT\)/],
    [['connections', 'set', 'a', 'demo', '--stdin'], /standard input is not JSON/],
    [['connections', 'list', 'a', '--url', 'ftp://x'], /is not an http\(s\) URL/],
    [['integrations'], /Usage:/],
    [['help', 'frob'], /no command "frob"/],
  ];
  for (const [argv, message] of cases) {
    const r = await cli([...argv, ...(argv.includes('--url') ? [] : url())]);
    t.equal(r.code, 2, argv.join(' '));
    t.match(r.stderr, message);
  }
  const arr = await cli(['connections', 'set', 'a', 'demo', '--stdin', ...url()], { stdin: '[1]' });
  t.match(arr.stderr, /expected a JSON object/);
  const noToken = await cli(['integrations', 'list', '--token-file', '/nonexistent', ...url()], { env: {} });
  t.equal(noToken.code, 2);
  t.match(noToken.stderr, /no admin token: set CREDPROXY_ADMIN_TOKEN or give --token-file/);
});

t.test('the token file, a wrong token, an unreachable proxy', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'credproxy-cli-'));
  writeFileSync(join(dir, 'admin.token'), `${ADMIN}\n`);
  const ok = await cli(['integrations', 'list', '--token-file', join(dir, 'admin.token'), ...url()], { env: {} });
  t.equal(ok.code, 0, ok.stderr);
  const wrong = await cli(['integrations', 'list', ...url()], { env: { CREDPROXY_ADMIN_TOKEN: 'not-the-token' } });
  t.equal(wrong.code, 1);
  t.match(wrong.stderr, /unauthorized \(401\)/);
  const port = await deadPort();
  const down = await cli(['integrations', 'list', '--url', `http://127.0.0.1:${port}`]);
  t.equal(down.code, 3);
  t.match(down.stderr, /cannot reach credproxy at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
  const envUrl = await cli(['integrations', 'list'], { env: { CREDPROXY_ADMIN_TOKEN: ADMIN, CREDPROXY_URL: proxy.url } });
  t.equal(envUrl.code, 0, 'CREDPROXY_URL is the default --url');
});

t.test('an answer that is not credproxy JSON is an API error', async (t) => {
  const http = await import('node:http');
  const server = http.createServer((_q, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const r = await cli(['integrations', 'list', '--url', `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`]);
  t.equal(r.code, 1);
  t.match(r.stderr, /not JSON; is --url a credproxy\?/);
});

t.test('help', async (t) => {
  const main = await cli(['help']);
  t.equal(main.code, 0);
  t.match(main.stdout, /Exit codes:\n {2}0 {2}ok\n {2}1 .*\n {2}2 .*\n {2}3 {2}cannot reach the proxy/);
  for (const topic of ['connections', 'integrations', 'start', 'validate']) {
    const r = await cli(['help', topic]);
    t.equal(r.code, 0);
    t.match(r.stdout, /Usage/);
  }
  const sub = await cli(['connections', 'set', '--help']);
  t.equal(sub.code, 0);
  t.match(sub.stdout, /credproxy connections set ENTITY INTEGRATION/);
});

t.test('the binary: exit codes as a shell sees them', { skip: built ? false : 'dist/ is not built: run npm test (it builds first)' }, async (t) => {
  const help = await binary(['--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /credproxy connections list\|get\|set\|delete\|connect-link/);
  const startHelp = await binary(['start', '--help']);
  t.match(startHelp.stdout, /^Usage: credproxy start/);
  const unknown = await binary(['frobnicate']);
  t.equal(unknown.code, 2);
  const listed = await binary(['integrations', 'list', '--json', '--url', proxy.url], { CREDPROXY_ADMIN_TOKEN: ADMIN });
  t.equal(listed.code, 0, listed.stderr);
  t.equal((JSON.parse(listed.stdout) as { integrations: unknown[] }).integrations.length, 4);
  const missing = await binary(['connections', 'get', 'zed', 'demo', '--url', proxy.url], { CREDPROXY_ADMIN_TOKEN: ADMIN });
  t.equal(missing.code, 1);
  const down = await binary(['integrations', 'list', '--url', `http://127.0.0.1:${await deadPort()}`], { CREDPROXY_ADMIN_TOKEN: ADMIN });
  t.equal(down.code, 3);
  const usage = await binary(['connections', 'get'], { CREDPROXY_ADMIN_TOKEN: ADMIN });
  t.equal(usage.code, 2);
});

t.test('integrations show prints params and the verify request; connections set prints the verification', async (t) => {
  const up = await startUpstream((req, res) => res.writeHead(req.headers.authorization === 'Bearer sk-right' ? 200 : 401).end());
  t.teardown(() => up.close());
  const checked = await startProxy(
    configDir('store: memory\n', {
      checked: [
        `hosts: ["127.0.0.1:${up.port}"]`,
        'upstream: http',
        'params:',
        '  - { name: region, pattern: "^[a-z]+$", default: eu, description: "data region" }',
        '  - { name: org }',
        'auth: { type: api_key }',
        'verify: { path: /v1/models, expect: [200] }',
        '',
      ].join('\n'),
    }),
  );
  t.teardown(() => checked.close());
  const at = ['--url', checked.url];
  const show = await cli(['integrations', 'show', 'checked', ...at]);
  t.equal(show.code, 0, show.stderr);
  t.match(show.stdout, new RegExp(`verify:\\s+GET 127\\.0\\.0\\.1:${up.port}/v1/models → 200\\n`));
  t.match(show.stdout, /\nPARAM\s+PATTERN\s+DEFAULT\s+DESCRIPTION\nregion\s+\^\[a-z\]\+\$\s+eu\s+data region\norg\s+-\s+-\s+-\n/);
  t.match(show.stdout, /scheme api_key\nFIELD/);
  const json = JSON.parse((await cli(['integrations', 'show', 'checked', '--json', ...at])).stdout) as { verify: unknown };
  t.same(json.verify, { method: 'GET', path: '/v1/models', host: `127.0.0.1:${up.port}`, expect: [200] });
  t.match((await cli(['integrations', 'show', 'demo', ...url()])).stdout, /verify:\s+-\n/, 'none declared');

  const good = await cli(['connections', 'set', 'alice', 'checked', '--field', 'api_key=sk-right', '--param', 'org=acme', ...at]);
  t.equal(good.code, 0, good.stderr);
  t.match(good.stdout, /verification:\s+ok: GET http:\/\/127\.0\.0\.1:\d+\/v1\/models answered 200\n/);
  const bad = await cli(['connections', 'set', 'alice', 'checked', '--field', 'api_key=sk-wrong', '--param', 'org=acme', ...at]);
  t.equal(bad.code, 1);
  t.match(bad.stderr, /bad_request \(400\): verification failed: .* answered 401/);
  t.notMatch(bad.stderr + bad.stdout, /sk-wrong/);
});
