import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { exampleSetup, run } from './run-example.js';

// The system Python: the python3 on PATH may be a pyenv one without requests.
const PYTHON = '/usr/bin/python3';

t.test('the Python example in docs/api-client.md does what it says, with requests', async (t) => {
  const doc = readFileSync('docs/api-client.md', 'utf8');
  const code = /<!-- python-example -->\n```python\n([\s\S]*?)```/.exec(doc)?.[1];
  t.ok(code, 'docs/api-client.md has the python-example block');
  const probe = await run(PYTHON, ['-c', 'import requests'], process.env);
  if (probe.code !== 0) {
    t.fail(`${PYTHON} with requests is needed for this test (apt-get install python3-requests): ${probe.stderr.trim().split('\n').at(-1) ?? ''}`);
    return;
  }
  const file = join(mkdtempSync(join(tmpdir(), 'credproxy-py-')), 'example.py');
  writeFileSync(file, code ?? '');
  const { env, up } = await exampleSetup(t);
  const r = await run(PYTHON, [file], env);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^200 /);
  t.match(r.stdout, /\d+ audit entries/);
  t.equal(up.seen.at(-1)?.headers.authorization, 'Bearer sk-alice-example', "alice's key was injected by credproxy");
  t.notOk(up.seen.at(-1)?.headers['proxy-authorization'], 'the proxy user never reaches the API');
});
