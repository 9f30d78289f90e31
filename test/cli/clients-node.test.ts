import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import t from 'tap';
import { clientRig, NEEDS_BUILD } from '../support/clients.js';

/**
 * Node's clients under the real `credproxy run` (Node 20 here: the only Node installed):
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
