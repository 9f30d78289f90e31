import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { clientRig, NEEDS_BUILD, pythonWith, requireTool } from '../support/clients.js';

/**
 * Python's HTTP clients under the real `credproxy run`, each as an unmodified script: the
 * SDK's key is read from the placeholder variable, the proxy and CA from what `run` sets
 * (urllib, httpx and aiohttp: SSL_CERT_FILE; requests: REQUESTS_CA_BUNDLE).
 */
const opts = { skip: NEEDS_BUILD, timeout: 240_000 };

const SCRIPTS: Record<string, { modules: string[]; debian: string; code: string }> = {
  urllib: {
    modules: ['urllib.request'],
    debian: 'python3',
    code: `
import os, sys, json, urllib.request
req = urllib.request.Request(sys.argv[1], data=b'{"from": "urllib"}', headers={"Authorization": "Bearer " + os.environ["API_KEY"], "Content-Type": "application/json"})
with urllib.request.urlopen(req) as r:
    print(json.dumps({"status": r.status, "body": json.loads(r.read())}))
`,
  },
  requests: {
    modules: ['requests'],
    debian: 'python3-requests',
    code: `
import os, sys, json, requests
r = requests.post(sys.argv[1], json={"from": "requests"}, headers={"Authorization": "Bearer " + os.environ["API_KEY"]})
print(json.dumps({"status": r.status_code, "body": r.json()}))
`,
  },
  httpx: {
    modules: ['httpx'],
    debian: 'python3-httpx',
    code: `
import os, sys, json, httpx
r = httpx.post(sys.argv[1], json={"from": "httpx"}, headers={"Authorization": "Bearer " + os.environ["API_KEY"]})
print(json.dumps({"status": r.status_code, "body": r.json()}))
`,
  },
  aiohttp: {
    modules: ['aiohttp'],
    debian: 'python3-aiohttp',
    // trust_env=True is aiohttp's own switch for HTTP(S)_PROXY: no environment can set it.
    code: `
import os, sys, json, asyncio, aiohttp
async def main():
    async with aiohttp.ClientSession(trust_env=True) as s:
        async with s.post(sys.argv[1], json={"from": "aiohttp"}, headers={"Authorization": "Bearer " + os.environ["API_KEY"]}) as r:
            print(json.dumps({"status": r.status, "body": await r.json()}))
asyncio.run(main())
`,
  },
};

for (const [name, script] of Object.entries(SCRIPTS)) {
  t.test(`Python ${name} under credproxy run`, opts, async (t) => {
    const python = pythonWith(script.modules);
    if (!requireTool(t, python !== undefined, `python3 with ${script.modules.join(', ')}`, script.debian)) return;
    const rig = await clientRig(t);
    const file = join(rig.work, `${name}_client.py`);
    writeFileSync(file, script.code);
    const r = await rig.run(python!, [file, `${rig.url}/v1/${name}`]);
    t.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { status: number; body: { url: string; method: string } };
    t.same([out.status, out.body.method, out.body.url], [200, 'POST', `/v1/${name}`], r.stdout);
    t.same(JSON.parse(rig.upstream.seen.at(-1)!.body.toString()), { from: name }, 'the JSON body arrived');
    rig.clean(t);
  });
}
