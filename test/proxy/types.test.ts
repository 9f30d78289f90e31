import { readFileSync } from 'node:fs';
import t from 'tap';

/*
 * src/proxy/types.ts exists so that the pipeline steps, the audit log and the verify endpoint
 * can share shapes without importing each other (which closed import circles). It stays a
 * leaf: type-only imports, and none from another file of proxy/.
 */
t.test('src/proxy/types.ts is a leaf: type-only imports, nothing from proxy/', async (t) => {
  const text = readFileSync(new URL('../../src/proxy/types.ts', import.meta.url), 'utf8');
  const imports = [...text.matchAll(/^import\b.*?from\s+'([^']+)';$/gms)];
  t.ok(imports.length > 0);
  for (const [line, spec] of imports) {
    t.match(line, /^import type /, `${spec}: type-only`);
    t.notMatch(spec!, /^\.\//, `${spec}: not another file of proxy/`);
  }
  t.notMatch(text, /^export (async )?(function|const|class|let)\b/m, 'declares types only');
});
