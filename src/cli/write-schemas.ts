import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { openApiText } from '../api/openapi.js';
import { SCHEMES } from '../auth/registry.js';
import { schemaFiles } from '../config/json-schema.js';

/**
 * The build step that writes schema/*.json (the config schemas and the admin API's openapi.json; npm run build runs it after
 * tsc). The files are
 * committed too, so `# yaml-language-server: $schema=../schema/…` works in a fresh clone;
 * test/config/json-schema.test.ts fails when they are stale.
 */
export function writeSchemas(dir: string): string[] {
  mkdirSync(dir, { recursive: true });
  // The admin API's OpenAPI document ships beside the config schemas (test/api/openapi.test.ts checks it is current).
  return Object.entries({ ...schemaFiles(SCHEMES), 'openapi.json': openApiText() }).map(([name, text]) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  });
}

const target = process.argv[2];
if (target !== undefined && process.argv[1]?.endsWith('write-schemas.js')) {
  for (const path of writeSchemas(resolve(target))) process.stdout.write(`wrote ${path}\n`);
}
