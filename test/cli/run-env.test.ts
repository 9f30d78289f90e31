import { execFile } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
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
  const dir = configDir('', {
    llm: `hosts: ["127.0.0.1:${up.port}"]\nupstream: http\nauth: { type: api_key, fields: [api_key] }\nplaceholder_env: OPENAI_API_KEY\n`,
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
  writeFileSync(join(dir, 'credproxy.yaml'), `store: memory\ntls: { ca_dir: "${join(dir, 'ca')}" }\nevents:\n  webhook_url: http://127.0.0.1:9/hook\n  secret: \${RUNENV_HOOK}\n`);
  const proxy = await startProxy(dir, { env: SERVER_VARS });
  t.teardown(() => proxy.close());
  return { dir, proxy, args: ['run', '--entity', 'alice', '--config', dir, '--url', proxy.url, '--'] };
}

t.test('the command under credproxy run gets no admin token, no storage key, no ${VAR} of the config', { skip }, async (t) => {
  const { dir, args } = await fixture(t);
  const env = { ...SERVER_VARS, CREDPROXY_ADMIN_TOKEN: ADMIN, CREDPROXY_SECRET_KEY: 'c2VjcmV0LWtleQ==', CREDPROXY_SECRET_KEYS: 'old,new', KEEP_ME: 'yes' };
  const r = await node([BIN, ...args, process.execPath, '-e', PRINT_ENV], env);
  t.equal(r.code, 0, r.stderr);
  const child = JSON.parse(r.stdout) as Record<string, string>;
  for (const name of ['CREDPROXY_ADMIN_TOKEN', 'CREDPROXY_SECRET_KEY', 'CREDPROXY_SECRET_KEYS', ...Object.keys(SERVER_VARS)]) {
    t.equal(child[name], undefined, `${name} is not in the command's environment`);
  }
  for (const value of [ADMIN, ...Object.values(SERVER_VARS)]) t.notMatch(r.stdout, value, 'nor its value under another name');
  t.equal(child.KEEP_ME, 'yes', 'the rest of the environment is inherited');
  t.match(child.OPENAI_API_KEY, /^cpx_/, 'the placeholder is the entity token');
  t.match(child.HTTPS_PROXY, /^http:\/\/alice:cpx_/);
  t.equal(child.SSL_CERT_FILE, join(dir, 'ca', 'bundle.pem'), 'tls.ca_dir was read without the rest of the config');
});

t.test('credproxy run works when the config names ${VAR}s that are not set where it runs', { skip }, async (t) => {
  const { args } = await fixture(t);
  const r = await node([BIN, ...args, process.execPath, '-e', PRINT_ENV], { CREDPROXY_ADMIN_TOKEN: ADMIN });
  t.equal(r.code, 0, `no server secret needed: ${r.stderr}`);
  t.match((JSON.parse(r.stdout) as Record<string, string>).OPENAI_API_KEY, /^cpx_/);
  const env = await node([BIN, 'env', ...args.slice(1, -1)], { CREDPROXY_ADMIN_TOKEN: ADMIN });
  t.equal(env.code, 0, env.stderr);
  t.match(env.stdout, /export OPENAI_API_KEY='cpx_/);
});
