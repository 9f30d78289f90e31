import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { makeTestCa } from '../support/certs.js';
import { pythonWith, requireTool, works } from '../support/clients.js';
import { configDir, startProxy, startUpstream } from '../support/servers.js';

/**
 * The tools developers point at a proxy, run as they would run them: curl and Python's
 * requests and a Go net/http program, over plain HTTP and HTTPS through CONNECT, naming the
 * entity as the proxy user or with the header. (Node's undici clients are covered by the rest
 * of the suite; every client under credproxy run: test/cli/clients-*.test.ts.) A tool missing
 * from the machine fails its test, naming the Debian package (.ci/run installs them).
 */

const CURL = works('curl', ['--version']);
const PYTHON = pythonWith(['requests']);
const GO = works('go', ['version']);

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // Only what the test gives: no proxy or CA variables of the machine leak in.
    execFile(cmd, args, { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, timeout: 20_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

async function fixture(t: Test) {
  const ca = makeTestCa('real clients upstream CA');
  const plain = await startUpstream();
  const secure = await startUpstream(undefined, { tls: ca.issue(['127.0.0.1']) });
  t.teardown(() => plain.close());
  t.teardown(() => secure.close());
  const dir = configDir('', {
    plain: `hosts: ["127.0.0.1:${plain.port}"]\nupstream: http\nauth: { type: bearer }\n`,
    secure: `hosts: ["127.0.0.1:${secure.port}"]\nauth: { type: api_key, fields: [api_key] }\ninject: { headers: { x-api-key: "{{api_key}}" } }\n`,
  });
  writeFileSync(join(dir, 'credproxy.yaml'), `store: memory\ntls:\n  ca_dir: ${join(dir, 'ca')}\n  upstream_ca: ${ca.write(dir)}\n`);
  const proxy = await startProxy(dir);
  t.teardown(() => proxy.close());
  await proxy.connect('alice', 'plain', { credentials: { token: 'plain-secret' } });
  await proxy.connect('alice', 'secure', { credentials: { api_key: 'secure-secret' } });
  const caFile = join(dir, 'credproxy-ca.pem');
  writeFileSync(caFile, proxy.runtime.tls.ca!.certPem);
  return { plain, secure, proxy, caFile, proxyUrl: `http://alice:x@127.0.0.1:${proxy.port}` };
}

/** What reached the upstream carries the credential and nothing of credproxy's own. */
function clean(t: Test, seen: { headers: Record<string, unknown> } | undefined, header: string, value: string): void {
  t.equal(seen?.headers[header], value, `the upstream got ${header}`);
  t.notOk(seen?.headers['proxy-authorization'], 'no Proxy-Authorization upstream');
  t.notOk(seen?.headers['x-entity-id'], 'no X-Entity-Id upstream');
}

t.test('curl: -x with the entity as proxy user, over http:// and https:// (CONNECT + the CA)', { timeout: 120_000 }, async (t) => {
  if (!requireTool(t, CURL, 'curl', 'curl')) return;
  const { plain, secure, proxyUrl, caFile, proxy } = await fixture(t);
  // curl sends a user without a password as `alice:`, which names the entity as well.
  const noPassword = await run('curl', ['-sS', '-x', `http://alice@127.0.0.1:${proxy.port}`, `http://127.0.0.1:${plain.port}/v1/nopass`]);
  t.equal(noPassword.code, 0, noPassword.stderr);
  clean(t, plain.seen.at(-1), 'authorization', 'Bearer plain-secret');

  const http = await run('curl', ['-sS', '-x', proxyUrl, `http://127.0.0.1:${plain.port}/v1/http?x=1`]);
  t.equal(http.code, 0, http.stderr);
  t.equal(JSON.parse(http.stdout).url, '/v1/http?x=1');
  clean(t, plain.seen.at(-1), 'authorization', 'Bearer plain-secret');

  const https = await run('curl', ['-sS', '-x', proxyUrl, '--cacert', caFile, `https://127.0.0.1:${secure.port}/v1/https`]);
  t.equal(https.code, 0, https.stderr);
  clean(t, secure.seen.at(-1), 'x-api-key', 'secure-secret');

  // The header form, inside the tunnel: curl sends -H to the target, not in the CONNECT.
  const header = await run('curl', ['-sS', '-x', `http://127.0.0.1:${proxy.port}`, '--cacert', caFile, '-H', 'X-Entity-Id: alice', `https://127.0.0.1:${secure.port}/v1/header`]);
  t.equal(header.code, 0, header.stderr);
  clean(t, secure.seen.at(-1), 'x-api-key', 'secure-secret');

  // HTTPS_PROXY from the environment, as most scripts set it; a client that does not trust the CA sends nothing.
  const env = await run('curl', ['-sS', '--cacert', caFile, `https://127.0.0.1:${secure.port}/v1/env`], { HTTPS_PROXY: proxyUrl });
  t.equal(env.code, 0, env.stderr);
  t.equal(secure.seen.at(-1)!.url, '/v1/env');
  const before = secure.seen.length;
  const untrusted = await run('curl', ['-sS', '-x', proxyUrl, `https://127.0.0.1:${secure.port}/v1/untrusted`]);
  t.equal(untrusted.code, 60, 'curl refuses the certificate (exit 60)');
  t.equal(secure.seen.length, before, 'nothing was forwarded');

  const error = await run('curl', ['-sS', '-x', `http://127.0.0.1:${proxy.port}`, '-D', '-', `http://127.0.0.1:${plain.port}/v1/anonymous`]);
  t.match(error.stdout, /^HTTP\/1\.1 400/);
  t.match(error.stdout, /x-credproxy-error: entity_required/i, 'the documented error, readable by a script');
  t.match(error.stdout, /HTTP_PROXY=http:\/\/ENTITY:KEY@proxy/, 'it names the proxy-user form');

  // Inside a tunnel (git's case: its CONNECT carries no proxy user), the answer names what such a client can do.
  const tunnelled = await run('curl', ['-sS', '-x', `http://127.0.0.1:${proxy.port}`, '--cacert', caFile, `https://127.0.0.1:${secure.port}/v1/anonymous`]);
  const message = (JSON.parse(tunnelled.stdout) as { error: { code: string; message: string } }).error;
  t.equal(message.code, 'entity_required');
  t.match(message.message, /HTTPS_PROXY=http:\/\/ENTITY:KEY@proxy/);
  t.match(message.message, /http\.proxyAuthMethod=basic/);
  t.match(message.message, /credproxy run --entity ENTITY/);
});

const PY = `
import json, os, sys, requests
out = []
for url in sys.argv[1:]:
    r = requests.post(url, json={"hello": "world"}, headers={"X-Entity-Id": "alice"} if "header" in url else {})
    out.append({"status": r.status_code, "body": r.json()})
print(json.dumps(out))
`;

t.test("Python requests: HTTP_PROXY / HTTPS_PROXY and REQUESTS_CA_BUNDLE, a JSON body, the entity as proxy user or header", { timeout: 120_000 }, async (t) => {
  if (!requireTool(t, PYTHON !== undefined, 'python3 with requests', 'python3-requests')) return;
  const { plain, secure, proxyUrl, caFile, proxy } = await fixture(t);
  const env = { HTTP_PROXY: proxyUrl, HTTPS_PROXY: proxyUrl, REQUESTS_CA_BUNDLE: caFile };
  const r = await run(PYTHON!, ['-c', PY, `http://127.0.0.1:${plain.port}/v1/py`, `https://127.0.0.1:${secure.port}/v1/py`], env);
  t.equal(r.code, 0, r.stderr);
  const [a, b] = JSON.parse(r.stdout) as Array<{ status: number; body: { method: string } }>;
  t.same([a!.status, a!.body.method, b!.status, b!.body.method], [200, 'POST', 200, 'POST'], r.stdout);
  clean(t, plain.seen.at(-1), 'authorization', 'Bearer plain-secret');
  clean(t, secure.seen.at(-1), 'x-api-key', 'secure-secret');
  t.equal(secure.seen.at(-1)!.body.toString(), '{"hello": "world"}', 'the body arrived as sent');

  // Python's requests drops a proxy user without a password: then the entity is not named.
  const nopass = await run(PYTHON!, ['-c', PY, `http://127.0.0.1:${plain.port}/v1/nopass`], { HTTP_PROXY: `http://alice@127.0.0.1:${proxy.port}` });
  t.equal((JSON.parse(nopass.stdout) as Array<{ body: { error: { code: string } } }>)[0]!.body.error.code, 'entity_required', 'why the README says to give a password');

  const anon = `http://127.0.0.1:${proxy.port}`;
  const h = await run(PYTHON!, ['-c', PY, `https://127.0.0.1:${secure.port}/v1/header`], { HTTPS_PROXY: anon, REQUESTS_CA_BUNDLE: caFile });
  t.equal(h.code, 0, h.stderr);
  clean(t, secure.seen.at(-1), 'x-api-key', 'secure-secret');
});

/** The Go recipe of the README and docs/https.md: an explicit proxy (Go never proxies loopback targets from HTTP_PROXY), the CA from SSL_CERT_FILE. */
const GO_CLIENT = `package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
)

func main() {
	proxy, _ := url.Parse(os.Args[1])
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxy)}}
	out := []map[string]any{}
	for _, target := range os.Args[2:] {
		req, _ := http.NewRequest("GET", target, nil)
		if entity := os.Getenv("ENTITY_HEADER"); entity != "" {
			req.Header.Set("X-Entity-Id", entity)
		}
		resp, err := client.Do(req)
		if err != nil {
			out = append(out, map[string]any{"error": err.Error()})
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		out = append(out, map[string]any{"status": resp.StatusCode, "body": string(body)})
	}
	b, _ := json.Marshal(out)
	fmt.Println(string(b))
}
`;

t.test('Go net/http: the README recipe, over http:// and https:// with SSL_CERT_FILE', { timeout: 180_000 }, async (t) => {
  if (!requireTool(t, GO, 'go', 'golang-go')) return;
  const { plain, secure, proxyUrl, caFile, proxy } = await fixture(t);
  const dir = join(caFile, '..');
  writeFileSync(join(dir, 'client.go'), GO_CLIENT);
  const goEnv = { GOCACHE: join(dir, 'gocache'), GOPATH: join(dir, 'gopath'), GO111MODULE: 'off' };
  const built = await run('go', ['build', '-o', join(dir, 'client'), join(dir, 'client.go')], goEnv);
  t.equal(built.code, 0, built.stderr);

  const r = await run(join(dir, 'client'), [proxyUrl, `http://127.0.0.1:${plain.port}/v1/go`, `https://127.0.0.1:${secure.port}/v1/go`], { SSL_CERT_FILE: caFile });
  t.equal(r.code, 0, r.stderr);
  const [a, b] = JSON.parse(r.stdout) as Array<{ status?: number; error?: string }>;
  t.same([a!.status, b!.status], [200, 200], r.stdout);
  clean(t, plain.seen.at(-1), 'authorization', 'Bearer plain-secret');
  clean(t, secure.seen.at(-1), 'x-api-key', 'secure-secret');

  const header = await run(join(dir, 'client'), [`http://127.0.0.1:${proxy.port}`, `https://127.0.0.1:${secure.port}/v1/go-header`], { SSL_CERT_FILE: caFile, ENTITY_HEADER: 'alice' });
  t.equal((JSON.parse(header.stdout) as Array<{ status?: number }>)[0]!.status, 200, header.stdout);
  t.equal(secure.seen.at(-1)!.url, '/v1/go-header');
  clean(t, secure.seen.at(-1), 'x-api-key', 'secure-secret');

  // Without the CA, Go refuses credproxy's certificate and nothing is forwarded.
  const before = secure.seen.length;
  const untrusted = await run(join(dir, 'client'), [proxyUrl, `https://127.0.0.1:${secure.port}/v1/untrusted`], { SSL_CERT_FILE: join(dir, 'nonexistent.pem') });
  t.match(JSON.parse(untrusted.stdout) as unknown, [{ error: /certificate/ }]);
  t.equal(secure.seen.length, before);
});
