import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { SCHEMES } from '../auth/registry.js';
import { schemaFiles } from '../config/json-schema.js';

/**
 * The build step that writes schema/*.json (npm run build runs it after tsc). The files are
 * committed too, so `# yaml-language-server: $schema=../schema/…` works in a fresh clone;
 * test/config/json-schema.test.ts fails when they are stale.
 */
export function writeSchemas(dir: string): string[] {
  mkdirSync(dir, { recursive: true });
  return Object.entries(schemaFiles(SCHEMES)).map(([name, text]) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  });
}

const target = process.argv[2];
if (target !== undefined && process.argv[1]?.endsWith('write-schemas.js')) {
  for (const path of writeSchemas(resolve(target))) process.stdout.write(`wrote ${path}\n`);
}
