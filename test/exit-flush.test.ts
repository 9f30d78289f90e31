import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t from 'tap';

// The log's use of it is in test/log.test.ts (LineBatch); this is the hook itself, in child
// processes that end in each of the ways a process ends.
const module = fileURLToPath(new URL('../src/exit-flush.js', import.meta.url));

function run(ending: string) {
  const code = [
    `import { writeSync } from 'node:fs';`,
    `import { flushAtExit } from ${JSON.stringify(module)};`,
    `const writer = (name) => ({ pending: name + '\\n', flushSync() { writeSync(1, this.pending); this.pending = ''; } });`,
    `const a = writer('first'); const b = writer('second');`,
    `flushAtExit(a); flushAtExit(b);`,
    `globalThis.keep = [a, b];`,
    ending,
  ].join('\n');
  return spawnSync(process.execPath, [...process.execArgv, '--input-type=module', '-e', code], { encoding: 'utf8', timeout: 60_000 });
}

t.test('every registered writer is flushed once, however the process ends', async (t) => {
  for (const [name, ending, status] of [
    ['process.exit', 'process.exit(3);', 3],
    ['the end of the event loop', 'setImmediate(() => {});', 0],
    ['an uncaught exception', "throw new Error('boom');", 1],
  ] as const) {
    const child = run(ending);
    t.equal(child.status, status, `${name}: ${child.stderr}`);
    t.equal(child.stdout, 'first\nsecond\n', `${name}: both flushed, once, in order`);
  }
});
