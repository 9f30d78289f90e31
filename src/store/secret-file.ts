import { randomBytes } from 'node:crypto';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { makePrivateDir } from './private-files.js';

/**
 * Reads a generated secret from `path`, or creates it once with mode 0600. Used for the
 * storage key and the admin token when the environment gives none, so `npm start` works
 * with no set-up while nothing is ever left open.
 */
export function readOrCreateSecret(path: string, bytes = 32): { value: string; created: boolean } {
  try {
    return { value: readFileSync(path, 'utf8').trim(), created: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  makePrivateDir(dirname(path));
  const value = randomBytes(bytes).toString('base64url');
  // 'wx': never overwrite a secret another process created in the meantime.
  try {
    writeFileSync(path, `${value}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return { value: readFileSync(path, 'utf8').trim(), created: false };
    throw err;
  }
  chmodSync(path, 0o600);
  return { value, created: true };
}
