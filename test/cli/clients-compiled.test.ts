import { lookup } from 'node:dns/promises';
import { hostname } from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { clientRig, NEEDS_BUILD, requireTool, works } from '../support/clients.js';

/**
 * Go's net/http and Java's HttpClient under the real `credproxy run`, each an unmodified
 * program on its default client. Neither sends proxy credentials on CONNECT by itself (Java
 * never does): run's relay names the entity for them.
 */
const opts = { skip: NEEDS_BUILD, timeout: 300_000 };

const GO_CLIENT = `package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
)

func main() {
	req, _ := http.NewRequest("POST", os.Args[1], strings.NewReader("from go"))
	req.Header.Set("Authorization", "Bearer "+os.Getenv("API_KEY"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	body, _ := io.ReadAll(resp.Body)
	fmt.Printf("%d %s\\n", resp.StatusCode, body)
}
`;

t.test('Go net/http (http.DefaultClient) under credproxy run', opts, async (t) => {
  if (!requireTool(t, works('go', ['version']), 'go', 'golang-go')) return;
  // Go never proxies "localhost" or a loopback IP literal, whatever HTTPS_PROXY says: the
  // upstream is named by this machine's host name, which resolves to a local address.
  const name = hostname();
  const found = await lookup(name, { family: 4 }).catch(() => undefined);
  if (!found) return void t.fail(`this machine's host name "${name}" does not resolve (/etc/hosts): the Go test names the upstream by it`);
  const { address } = found;
  const rig = await clientRig(t, { host: name.toLowerCase(), address });
  const dir = join(rig.work, 'goclient');
  mkdirSync(dir);
  writeFileSync(join(dir, 'main.go'), GO_CLIENT);
  // Offline and self-contained: a single-file program, the build cache in the scratch folder.
  const goEnv = { GOCACHE: join(rig.work, 'gocache'), GOPATH: join(rig.work, 'gopath'), GOFLAGS: '-mod=mod', GO111MODULE: 'off', GOTOOLCHAIN: 'local' };
  const r = await rig.run('go', ['run', join(dir, 'main.go'), `${rig.url}/v1/go`], goEnv);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^200 .*"url":"\/v1\/go"/);
  t.equal(rig.upstream.seen.at(-1)!.body.toString(), 'from go');
  rig.clean(t);
});

const JAVA_CLIENT = `
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;

public class Client {
  public static void main(String[] args) throws Exception {
    HttpClient client = HttpClient.newHttpClient();
    HttpRequest req = HttpRequest.newBuilder(URI.create(args[0]))
        .header("Authorization", "Bearer " + System.getenv("API_KEY"))
        .POST(HttpRequest.BodyPublishers.ofString("from java"))
        .build();
    HttpResponse<String> resp = client.send(req, HttpResponse.BodyHandlers.ofString());
    System.out.println(resp.statusCode() + " " + resp.body());
  }
}
`;

t.test("Java's HttpClient under credproxy run: JAVA_TOOL_OPTIONS names the proxy and a PKCS#12 trust store", opts, async (t) => {
  if (!requireTool(t, works('java', ['-version']), 'java', 'openjdk-17-jdk-headless')) return;
  const rig = await clientRig(t);
  const file = join(rig.work, 'Client.java');
  writeFileSync(file, JAVA_CLIENT);
  const r = await rig.run('java', [file, `${rig.url}/v1/java`]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^200 .*"url":"\/v1\/java"/);
  t.equal(rig.upstream.seen.at(-1)!.body.toString(), 'from java');
  rig.clean(t);
});
