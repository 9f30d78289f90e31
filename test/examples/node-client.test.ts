import { existsSync, readFileSync } from 'node:fs';
import t from 'tap';
import { exampleSetup, run } from './run-example.js';

const EXAMPLE = 'examples/node-client/connect-and-call.mjs';

t.test('the Node example connects a user and calls an API as that user, in under ten lines', async (t) => {
  // It imports credproxy/client as an application would: the package's built output.
  t.ok(existsSync('dist/src/client/index.js'), 'dist/ is built (npm run build)');
  const logic = readFileSync(EXAMPLE, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.trim().startsWith('//') && !l.startsWith('import '));
  t.ok(logic.length < 10, `${logic.length} lines of logic`);
  const { env, up } = await exampleSetup(t);
  const r = await run(process.execPath, [EXAMPLE], env);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^200 /);
  t.equal(up.seen.at(-1)?.headers.authorization, 'Bearer sk-alice-example', "alice's key was injected by credproxy");
  t.equal(up.seen.at(-1)?.url, '/v1/models');
});
