import { execFile, execFileSync, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import t from 'tap';
import { BIN, clientRig, NEEDS_BUILD, REAL_KEY, requireTool, works } from '../support/clients.js';
import { ADMIN } from '../support/servers.js';

/**
 * curl, wget and git under the real `credproxy run`, unmodified and with their default
 * configuration: an intercepted HTTPS upstream gets the injected credential, never a cpx_.
 * (The client table in the README's agent section points here.)
 */
const opts = { skip: NEEDS_BUILD, timeout: 240_000 };

t.test('curl under credproxy run: the placeholder in -H is replaced, the bundle comes from CURL_CA_BUNDLE', opts, async (t) => {
  if (!requireTool(t, works('curl', ['--version']), 'curl', 'curl')) return;
  const rig = await clientRig(t);
  const r = await rig.run('sh', ['-c', `curl -sS --fail -H "Authorization: Bearer $API_KEY" ${rig.url}/v1/curl && curl -sS --fail -X POST -d hello ${rig.url}/v1/curl-post`]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /"url":"\/v1\/curl"/);
  t.equal(rig.upstream.seen.length, 2);
  t.equal(rig.upstream.seen[1]!.body.toString(), 'hello', 'the body arrived');
  rig.clean(t);
});

t.test('wget (GnuTLS: reads no CA variable) under credproxy run: WGETRC names the bundle', opts, async (t) => {
  if (!requireTool(t, works('wget', ['--version']), 'wget', 'wget')) return;
  const rig = await clientRig(t);
  const r = await rig.run('wget', ['-q', '-O', '-', `${rig.url}/v1/wget`]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /"url":"\/v1\/wget"/);
  rig.clean(t);
});

const GIT_ID = { GIT_AUTHOR_NAME: 'Alice', GIT_AUTHOR_EMAIL: 'alice@example.test', GIT_COMMITTER_NAME: 'Alice', GIT_COMMITTER_EMAIL: 'alice@example.test' };
const BASIC = `Basic ${Buffer.from(`git:${REAL_KEY}`).toString('base64')}`;

/**
 * `git http-backend` as a CGI behind Basic auth, bridged by node:http: what a git server is.
 * An unauthenticated request gets 401, so a clone that works proves the injected credential.
 */
function gitServer(root: string) {
  return (req: IncomingMessage, res: ServerResponse, body: Buffer) => {
    if (req.headers.authorization !== BASIC) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="git"' }).end('credentials needed\n');
      return;
    }
    const url = new URL(req.url ?? '/', 'https://git.invalid');
    const cgi = spawn('git', ['http-backend'], {
      env: {
        PATH: process.env.PATH,
        GIT_PROJECT_ROOT: root,
        GIT_HTTP_EXPORT_ALL: '1',
        REMOTE_USER: 'git',
        REQUEST_METHOD: req.method ?? 'GET',
        PATH_INFO: decodeURIComponent(url.pathname),
        QUERY_STRING: url.search.slice(1),
        CONTENT_TYPE: req.headers['content-type'] ?? '',
        CONTENT_LENGTH: String(body.length),
        HTTP_CONTENT_ENCODING: String(req.headers['content-encoding'] ?? ''),
        GIT_PROTOCOL: String(req.headers['git-protocol'] ?? ''),
      },
    });
    const out: Buffer[] = [];
    cgi.stdout.on('data', (c: Buffer) => out.push(c));
    cgi.stdin.end(body);
    cgi.on('close', () => {
      const all = Buffer.concat(out);
      const split = all.indexOf('\r\n\r\n') >= 0 ? all.indexOf('\r\n\r\n') : all.indexOf('\n\n');
      const sep = all.indexOf('\r\n\r\n') >= 0 ? 4 : 2;
      const headers: Record<string, string> = {};
      let status = 200;
      for (const line of all.subarray(0, split).toString().split(/\r?\n/)) {
        const i = line.indexOf(':');
        if (i < 0) continue;
        const name = line.slice(0, i).trim().toLowerCase();
        const value = line.slice(i + 1).trim();
        if (name === 'status') status = Number.parseInt(value, 10);
        else headers[name] = value;
      }
      res.writeHead(status, headers).end(all.subarray(split + sep));
    });
  };
}

t.test('git clone and push under credproxy run, git default config, through a Basic-auth git server', opts, async (t) => {
  if (!requireTool(t, works('git', ['--version']), 'git', 'git')) return;
  const srv = join(process.cwd(), '.tap', `git-srv-${process.pid}`);
  mkdirSync(srv, { recursive: true });
  const rig = await clientRig(t, { handler: gitServer(srv), auth: 'auth: { type: basic }', credentials: { username: 'git', password: REAL_KEY } });
  const git = (args: string[], cwd: string) => execFileSync('git', args, { cwd, env: { PATH: process.env.PATH, HOME: rig.work, ...GIT_ID }, stdio: 'pipe' });
  git(['init', '-q', '-b', 'main', join(srv, 'seed')], srv);
  git(['commit', '-q', '--allow-empty', '-m', 'first'], join(srv, 'seed'));
  git(['clone', '-q', '--bare', join(srv, 'seed'), join(srv, 'repo.git')], srv);
  t.teardown(() => execFileSync('rm', ['-rf', srv]));

  const clone = await rig.run('git', ['clone', `${rig.url}/repo.git`, 'repo'], GIT_ID);
  t.equal(clone.code, 0, `clone: ${clone.stderr}`);
  git(['commit', '-q', '--allow-empty', '-m', 'from the agent'], join(rig.work, 'repo'));
  const push = await rig.run('git', ['-C', join(rig.work, 'repo'), 'push', 'origin', 'HEAD:main'], GIT_ID);
  t.equal(push.code, 0, `push: ${push.stderr}`);
  t.match(git(['log', '--format=%s', 'main'], join(srv, 'repo.git')).toString(), /from the agent/, 'the push arrived');
  t.ok(rig.upstream.seen.some((s) => s.url.includes('git-receive-pack') && s.method === 'POST'), 'git-receive-pack was posted');
  rig.clean(t, 'authorization', BASIC);
});

t.test('git clone with what credproxy env prints (no relay): http.proxyAuthMethod=basic comes through GIT_CONFIG_*', opts, async (t) => {
  if (!requireTool(t, works('git', ['--version']), 'git', 'git')) return;
  const srv = join(process.cwd(), '.tap', `git-env-${process.pid}`);
  mkdirSync(srv, { recursive: true });
  t.teardown(() => execFileSync('rm', ['-rf', srv]));
  const rig = await clientRig(t, { handler: gitServer(srv), auth: 'auth: { type: basic }', credentials: { username: 'git', password: REAL_KEY } });
  const env = { PATH: process.env.PATH, HOME: rig.work, CREDPROXY_ADMIN_TOKEN: ADMIN, ...GIT_ID };
  const git = (args: string[], cwd: string) => execFileSync('git', args, { cwd, env, stdio: 'pipe' });
  git(['init', '-q', '-b', 'main', join(srv, 'seed')], srv);
  git(['commit', '-q', '--allow-empty', '-m', 'first'], join(srv, 'seed'));
  git(['clone', '-q', '--bare', join(srv, 'seed'), join(srv, 'repo.git')], srv);
  // A caller's own GIT_CONFIG_* pair stays; credproxy's goes after it.
  const script = `eval "$("${process.execPath}" "${BIN}" env --entity alice --token --config "${rig.dir}" --url ${rig.proxy.url})" && git clone -q ${rig.url}/repo.git repo && git -C repo config --get core.mine`;
  const r = await new Promise<{ code: number; out: string }>((resolve) => {
    execFile('sh', ['-c', script], { cwd: rig.work, env: { ...env, GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: 'core.mine', GIT_CONFIG_VALUE_0: 'kept' } }, (err, stdout, stderr) =>
      resolve({ code: err ? 1 : 0, out: `${stdout}${stderr}` }),
    );
  });
  t.equal(r.code, 0, r.out);
  t.match(r.out, /kept/, "the caller's git setting is still there");
  rig.clean(t, 'authorization', BASIC);
});
