import { execFile } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { nodeOptionsWith } from '../../src/cli/agent-env.js';
import { makeTestCa } from '../support/certs.js';
import { ADMIN, configDir, startProxy, startUpstream } from '../support/servers.js';

/**
 * `credproxy run` hands its command a proxy and an entity token, not what stands behind them:
 * no admin token, no storage key, no variable the config reads as `${VAR}`; and it needs none
 * of those to be set to start.
 */
const BIN = join(process.cwd(), 'bin', 'credproxy.js');
const built = existsSync(join(process.cwd(), 'dist', 'src', 'cli.js'));
const skip = built ? false : 'dist/ is not built: run npm test (it builds first)';
const PRINT_ENV = 'console.log(JSON.stringify(process.env))';
const SERVER_VARS = { RUNENV_GH_CLIENT_ID: 'gh-client-id-123', RUNENV_GH_SECRET: 'gh-client-secret-456789', RUNENV_HOOK: 'hook-secret-abcdef0123' };

function node(argv: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, argv, { env: { PATH: process.env.PATH, ...env } }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

async function fixture(t: Test) {
  const up = await startUpstream();
  t.teardown(() => up.close());
  const upstreamCa = makeTestCa('run-env upstream CA');
  const tlsUp = await startUpstream(undefined, { tls: upstreamCa.issue(['127.0.0.1']) });
  t.teardown(() => tlsUp.close());
  const dir = configDir('', {
    llm: `hosts: ["127.0.0.1:${up.port}"]\nupstream: http\nauth: { type: api_key, fields: [api_key] }\nplaceholder_env: OPENAI_API_KEY\n`,
    secure: `hosts: ["127.0.0.1:${tlsUp.port}"]\nauth: { type: api_key, fields: [api_key] }\nplaceholder_env: OPENAI_API_KEY\n`,
    gh: [
      'hosts: [gh.runenv.test]',
      'auth:',
      '  type: oauth2',
      '  authorize_url: https://gh.runenv.test/authorize',
      '  token_url: https://gh.runenv.test/token',
      '  client_id: ${RUNENV_GH_CLIENT_ID}',
      '  client_secret: ${RUNENV_GH_SECRET}',
      '',
    ].join('\n'),
  });
  writeFileSync(join(dir, 'credproxy.yaml'), `store: memory\ntls: { ca_dir: "${join(dir, 'ca')}", upstream_ca: "${upstreamCa.write(dir)}" }\nevents:\n  webhook_url: http://127.0.0.1:9/hook\n  secret: \${RUNENV_HOOK}\n`);
  const proxy = await startProxy(dir, { env: SERVER_VARS });
  t.teardown(() => proxy.close());
  await proxy.connect('alice', 'llm', { credentials: { api_key: 'sk-real-alice-llm' } });
  await proxy.connect('alice', 'secure', { credentials: { api_key: 'sk-real-alice-secure' } });
  return { up, tlsUp, dir, proxy, args: ['run', '--entity', 'alice', '--config', dir, '--url', proxy.url, '--no-proxy', 'example.invalid', '--'] };
}

t.test('the command under credproxy run gets no admin token, no storage key, no ${VAR} of the config', { skip }, async (t) => {
  const { dir, args } = await fixture(t);
  const env = { ...SERVER_VARS, CREDPROXY_ADMIN_TOKEN: ADMIN, CREDPROXY_SECRET_KEY: 'c2VjcmV0LWtleQ==', CREDPROXY_SECRET_KEYS: 'old,new', KEEP_ME: 'yes', NODE_OPTIONS: '--no-warnings' };
  const r = await node([BIN, ...args, process.execPath, '-e', PRINT_ENV], env);
  t.equal(r.code, 0, r.stderr);
  const child = JSON.parse(r.stdout) as Record<string, string>;
  for (const name of ['CREDPROXY_ADMIN_TOKEN', 'CREDPROXY_SECRET_KEY', 'CREDPROXY_SECRET_KEYS', ...Object.keys(SERVER_VARS)]) {
    t.equal(child[name], undefined, `${name} is not in the command's environment`);
  }
  for (const value of [ADMIN, ...Object.values(SERVER_VARS)]) t.notMatch(r.stdout, value, 'nor its value under another name');
  t.equal(child.KEEP_ME, 'yes', 'the rest of the environment is inherited');
  // (tap adds its own --import flags to every child's NODE_OPTIONS, hence no exact match)
  t.match(child.NODE_OPTIONS, /--no-warnings.*--import"? "?[^ ]*\/bin\/fetch-proxy\.mjs/, "the caller's NODE_OPTIONS, then the fetch preload");
  t.equal(child.NODE_USE_ENV_PROXY, '1');
  t.equal(child.OPENAI_API_KEY, 'credproxy-placeholder', 'the placeholder is a stand-in, not the entity token');
  t.match(child.HTTPS_PROXY, /^http:\/\/127\.0\.0\.1:\d+$/, "the proxy is run's relay, with no credential in its URL");
  t.notMatch(r.stdout, /cpx_/, 'the command holds no entity token at all: the relay does');
  t.equal(child.SSL_CERT_FILE, join(dir, 'ca', 'bundle.pem'), 'tls.ca_dir was read without the rest of the config');
});

t.test('credproxy run works when the config names ${VAR}s that are not set where it runs', { skip }, async (t) => {
  const { args } = await fixture(t);
  const r = await node([BIN, ...args, process.execPath, '-e', PRINT_ENV], { CREDPROXY_ADMIN_TOKEN: ADMIN });
  t.equal(r.code, 0, `no server secret needed: ${r.stderr}`);
  t.equal((JSON.parse(r.stdout) as Record<string, string>).OPENAI_API_KEY, 'credproxy-placeholder');
  const env = await node([BIN, 'env', ...args.slice(1, -1)], { CREDPROXY_ADMIN_TOKEN: ADMIN });
  t.equal(env.code, 0, env.stderr);
  t.match(env.stdout, /export OPENAI_API_KEY='cpx_/);
});

/** An agent that uses nothing but Node's global fetch(), with its key from the environment. */
const FETCH_AGENT = `const out = [];
for (const url of process.argv.slice(1)) {
  const r = await fetch(url, { headers: { authorization: 'Bearer ' + process.env.OPENAI_API_KEY } });
  out.push({ url, status: r.status, body: await r.text() });
}
console.log(JSON.stringify(out));`;

t.test("Node's built-in fetch() under credproxy run goes through the proxy: the upstream sees the real key, never cpx_", { skip }, async (t) => {
  const { up, tlsUp, args } = await fixture(t);
  const r = await node([BIN, ...args, process.execPath, '--input-type=module', '-e', FETCH_AGENT, `${up.origin}/v1/plain`, `${tlsUp.origin}/v1/tls`], {
    CREDPROXY_ADMIN_TOKEN: ADMIN,
    NODE_OPTIONS: '--no-warnings',
  });
  t.equal(r.code, 0, r.stderr);
  const [plain, tls] = JSON.parse(r.stdout) as Array<{ status: number }>;
  t.equal(plain!.status, 200, 'http:// through the proxy');
  t.equal(tls!.status, 200, 'https:// through a terminated tunnel, trusting the CA from NODE_EXTRA_CA_CERTS');
  t.equal(up.seen.at(-1)!.headers.authorization, 'Bearer sk-real-alice-llm', 'the upstream saw the injected key');
  t.equal(tlsUp.seen.at(-1)!.headers.authorization, 'Bearer sk-real-alice-secure');
  t.notMatch(JSON.stringify([...up.seen, ...tlsUp.seen].map((s) => s.rawHeaders)), /cpx_/, 'no cpx_ token reached an upstream');
});

t.test('NODE_OPTIONS: the preload is added once, quoted as node parses it', async (t) => {
  t.equal(nodeOptionsWith(undefined, '/a b/fetch-proxy.mjs'), '--import "/a b/fetch-proxy.mjs"');
  t.equal(nodeOptionsWith('--max-old-space-size=64', '/p/x.mjs'), '--max-old-space-size=64 --import "/p/x.mjs"');
  t.equal(nodeOptionsWith('--import "/p/x.mjs"', '/p/x.mjs'), '--import "/p/x.mjs"', 'a shell that ran credproxy env before');
  t.equal(nodeOptionsWith('', '/p/"q.mjs'), '--import "/p/\\"q.mjs"', 'a quote in the path is escaped');
});
