import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import t, { type Test } from 'tap';
import { agentVariables, SHELLS } from '../../src/cli/agent-env.js';
import { type CliIO } from '../../src/cli/admin.js';
import { runAgentCommand } from '../../src/cli/agent.js';
import { makeTestCa } from '../support/certs.js';
import { ADMIN, configDir, startProxy, startUpstream } from '../support/servers.js';

const BIN = join(process.cwd(), 'bin', 'credproxy.js');
const built = existsSync(join(process.cwd(), 'dist', 'src', 'cli.js'));
const UNDICI = import.meta.resolve('undici');

/** An unmodified SDK: reads its key from the environment, honours HTTPS_PROXY, trusts the CA the environment names. */
const SDK = `import { EnvHttpProxyAgent, request } from ${JSON.stringify(UNDICI)};
const key = process.env.OPENAI_API_KEY;
if (!key) { console.error('OPENAI_API_KEY is not set'); process.exit(99); }
const dispatcher = new EnvHttpProxyAgent();
const out = [];
const [api, ...others] = process.argv.slice(2, -1);
for (const url of [api, ...others]) {
  try {
    // Like a real SDK, the key goes to its API host only; other URLs are fetched plainly (pip,
    // git), unless they say "leak": an agent talked into sending its key elsewhere.
    const r = await request(url, { dispatcher, headers: url === api || url.includes('leak') ? { authorization: 'Bearer ' + key } : {} });
    out.push({ url, status: r.statusCode, body: await r.body.text() });
  } catch (err) {
    out.push({ url, error: String(err.cause?.code ?? err.code ?? err.message) });
  }
}
console.log(JSON.stringify(out));
await dispatcher.close();
process.exit(Number(process.argv.at(-1)));
`;

async function cli(argv: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: CliIO = { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s), env, readStdin: async () => '' };
  const code = await runAgentCommand(argv, io);
  return { code, stdout, stderr };
}

/** Parses `export NAME='value'` lines back. */
function parseSh(text: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^export ([A-Za-z_]+)='(.*)'$/.exec(line);
    if (m) vars[m[1]!] = m[2]!.replace(/'\\''/g, "'");
  }
  return vars;
}

function node(argv: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, argv, { env: { PATH: process.env.PATH, ...env } }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

async function fixture(t: Test, opts: { placeholder?: boolean } = {}) {
  const upstreamCa = makeTestCa('agent test upstream CA');
  // Stands in for the system's CAs: the passthrough host is signed by it, credproxy does not know it.
  const systemCa = makeTestCa('agent test "system" CA');
  const up = await startUpstream(undefined, { tls: upstreamCa.issue(['127.0.0.1']) });
  const other = await startUpstream(undefined, { tls: systemCa.issue(['127.0.0.1']) });
  t.teardown(() => up.close());
  t.teardown(() => other.close());
  const dir = configDir('', {
    llm: `hosts: ["127.0.0.1:${up.port}"]\nauth: { type: api_key, fields: [api_key] }\n${opts.placeholder === false ? '' : 'placeholder_env: OPENAI_API_KEY\n'}`,
  });
  // credproxy itself does not know the "system" CA: when it terminates a token client's
  // tunnel to the passthrough host, it trusts what the bundle it wrote for the client holds.
  writeFileSync(join(dir, 'credproxy.yaml'), `store: memory\negress: { allow_private: ["127.0.0.0/8"] }\ntls:\n  ca_dir: ${join(dir, 'ca')}\n  upstream_ca: ${upstreamCa.write(dir)}\n`);
  const proxy = await startProxy(dir);
  t.teardown(() => proxy.close());
  await proxy.connect('alice', 'llm', { credentials: { api_key: 'sk-real-alice' } });
  const sdk = join(dir, 'sdk.mjs');
  writeFileSync(sdk, SDK);
  const env = { CREDPROXY_ADMIN_TOKEN: ADMIN, SSL_CERT_FILE: systemCa.write(dir, 'system.pem') };
  const args = ['--entity', 'alice', '--config', dir, '--url', proxy.url, '--no-proxy', 'example.invalid'];
  return { up, other, dir, proxy, sdk, env, args, systemCa };
}

t.test('credproxy env: an unmodified SDK reaches the upstream through the proxy; the upstream sees the real key, never cpx_', async (t) => {
  const { up, other, dir, proxy, sdk, env, args } = await fixture(t);
  const r = await cli(['env', ...args], env);
  t.equal(r.code, 0, r.stderr);
  const vars = parseSh(r.stdout);
  t.match(r.stdout, /^# entity token tok_\S+, valid until /);
  t.match(vars.OPENAI_API_KEY, /^cpx_/);
  // The token is the proxy password too: every tunnel of the agent is inspected.
  const proxyUrl = proxy.url.replace('http://', `http://alice:${vars.OPENAI_API_KEY}@`);
  for (const n of ['HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy']) t.equal(vars[n], proxyUrl, n);
  t.equal(vars.NO_PROXY, 'example.invalid');
  t.equal(vars.no_proxy, 'example.invalid');
  const bundle = join(dir, 'ca', 'bundle.pem');
  for (const n of ['SSL_CERT_FILE', 'NODE_EXTRA_CA_CERTS', 'REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE', 'GIT_SSL_CAINFO', 'PIP_CERT']) t.equal(vars[n], bundle, n);
  t.match(vars.OPENAI_API_KEY, /^cpx_/);
  const pem = readFileSync(bundle, 'utf8');
  t.ok(pem.includes(proxy.runtime.tls.ca!.certPem.trim()), "the bundle has credproxy's CA");
  t.ok(pem.includes(readFileSync(env.SSL_CERT_FILE, 'utf8').trim()), 'and the CAs the environment trusted');
  t.ok(pem.includes(rootCertificates[0]!.trim()), "and node's roots");

  const run = await node([sdk, `https://127.0.0.1:${up.port}/v1/chat`, `https://127.0.0.1:${other.port}/simple`, `https://127.0.0.1:${other.port}/leak`, '0'], vars);
  t.equal(run.code, 0, run.stderr);
  const [llm, pass, leak] = JSON.parse(run.stdout) as Array<{ status?: number; error?: string }>;
  t.equal(llm!.status, 200, JSON.stringify(llm));
  t.equal(up.seen.at(-1)!.headers.authorization, 'Bearer sk-real-alice', 'the upstream saw the real key');
  t.equal(pass!.status, 200, `passthrough HTTPS verifies with the combined bundle: ${JSON.stringify(pass)}`);
  t.equal(leak!.status, 403, `the key sent inside TLS to a passthrough host is refused: ${JSON.stringify(leak)}`);
  t.same(other.seen.map((s) => s.url), ['/simple'], 'the passthrough host got the plain request only');
  t.notMatch(JSON.stringify([...up.seen, ...other.seen].map((s) => [s.url, s.rawHeaders])), /cpx_/, 'no cpx_ token reached any upstream');
});

t.test('credproxy env --label: the entity token carries the label, so an SDK that sets no header uses that account', async (t) => {
  const { up, proxy, sdk, env, args } = await fixture(t);
  t.equal((await proxy.admin('PUT', '/api/entities/alice/connections/llm?label=work', { credentials: { api_key: 'sk-real-alice-work' } })).status, 200);
  const r = await cli(['env', ...args, '--label', 'work'], env);
  t.equal(r.code, 0, r.stderr);
  const vars = parseSh(r.stdout);
  const run = await node([sdk, `https://127.0.0.1:${up.port}/v1/chat`, '0'], vars);
  t.equal(run.code, 0, run.stderr);
  t.equal((JSON.parse(run.stdout) as Array<{ status?: number }>)[0]!.status, 200);
  t.equal(up.seen.at(-1)!.headers.authorization, 'Bearer sk-real-alice-work', 'the labelled connection, chosen by the token');

  const bad = await cli(['env', ...args, '--label', 'no spaces'], env);
  t.equal(bad.code, 1);
  t.match(bad.stderr, /bad_request \(400\): label: a connection label is 1 to 64/);
  // Without placeholder_env or --token, no request would carry the token, so neither the label.
  const bare = configDir(`store: memory\ntls: { intercept: false }\n`, { plain: 'hosts: ["plain.test"]\nauth: { type: bearer }\n' });
  const none = await cli(['env', '--entity', 'alice', '--config', bare, '--url', proxy.url, '--label', 'work'], env);
  t.equal(none.code, 2);
  t.match(none.stderr, /--label is carried by the entity token: add --token/);
});

t.test('credproxy env without a token: the entity as proxy user, passthrough HTTPS an opaque tunnel verified with the bundle', async (t) => {
  const { other, proxy, sdk, env, args } = await fixture(t, { placeholder: false });
  const r = await cli(['env', ...args], env);
  t.equal(r.code, 0, r.stderr);
  const vars = parseSh(r.stdout);
  t.equal(vars.HTTPS_PROXY, proxy.url.replace('http://', 'http://alice:x@'));
  t.equal(vars.OPENAI_API_KEY, undefined, 'no token issued');
  const run = await node([sdk, `https://127.0.0.1:${other.port}/direct`, '0'], { ...vars, OPENAI_API_KEY: 'sk-own' });
  const [pass] = JSON.parse(run.stdout) as Array<{ status?: number; error?: string }>;
  t.equal(pass!.status, 200, JSON.stringify(pass));
  t.equal(other.seen.at(-1)!.headers.authorization, 'Bearer sk-own', 'the tunnel was not terminated: the client talked to the host itself');
  t.match(proxy.logs.text, /"mode":"tunnel"/);
});

t.test('credproxy env: --token puts the token in the proxy URL; shells; usage errors', async (t) => {
  const { proxy, env, args } = await fixture(t);
  const r = await cli(['env', ...args, '--token', '--shell', 'fish'], env);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, new RegExp(`set -gx HTTPS_PROXY 'http://alice:cpx_[A-Za-z0-9_-]+@127\\.0\\.0\\.1:${proxy.port}'`));
  const ps = await cli(['env', ...args, '--shell', 'powershell'], env);
  t.match(ps.stdout, /\$env:OPENAI_API_KEY = 'cpx_/);

  t.equal(SHELLS.sh!('A', "it's"), `export A='it'\\''s'`);
  t.equal(SHELLS.fish!('A', "a\\'b"), `set -gx A 'a\\\\\\'b'`);
  t.equal(SHELLS.powershell!('A', "it's"), `$env:A = 'it''s'`);
  t.same(agentVariables({ proxyUrl: 'http://h:1', entity: 'a@b', noProxy: '', placeholders: ['K'] }).slice(0, 1), [['HTTP_PROXY', 'http://a%40b:x@h:1']], 'no token: no placeholder, entity as the proxy user (with a password, for Python)');

  for (const [argv, why] of [
    [['env', '--config', '/nonexistent'], /--entity E is required/],
    [['env', ...args, '--shell', 'zsh'], /--shell "zsh"/],
    [['env', ...args, '--ttl', 'x'], /--ttl/],
    [['env', ...args, 'extra'], /unexpected argument/],
    [['run', ...args], /no command/],
    [['env', '--bogus'], /Unknown option/],
  ] as const) {
    const e = await cli([...argv], env);
    t.equal(e.code, 2, argv.join(' '));
    t.match(e.stderr, why);
  }
  const help = await cli(['run', '--help'], env);
  t.match(help.stdout, /Usage: credproxy run/);
  const noAdmin = await cli(['env', ...args], { SSL_CERT_FILE: env.SSL_CERT_FILE, CREDPROXY_ADMIN_TOKEN: 'wrong-token-0123456789' });
  t.equal(noAdmin.code, 1, 'the admin API refused');
  t.match(noAdmin.stderr, /unauthorized/);
});

t.test('credproxy run -- node sdk.mjs: the environment, and the exit status', { skip: built ? false : 'dist/ is not built: run npm test (it builds first)' }, async (t) => {
  const { up, proxy, sdk, env, args } = await fixture(t);
  const r = await node([BIN, 'run', ...args, '--', process.execPath, sdk, `https://127.0.0.1:${up.port}/v1/run`, '7'], env);
  t.equal(r.code, 7, `exits with the command's status; stderr: ${r.stderr}`);
  const [res] = JSON.parse(r.stdout) as Array<{ status: number }>;
  t.equal(res!.status, 200);
  t.equal(up.seen.at(-1)!.headers.authorization, 'Bearer sk-real-alice');
  t.match(proxy.logs.text, /entity token revoked/, 'the token of the run is revoked when it ends');
  const missing = await node([BIN, 'run', ...args, '--', '/nonexistent/cmd'], env);
  t.equal(missing.code, 127);
});
