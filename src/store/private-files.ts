import { chmodSync, closeSync, mkdirSync, openSync, statSync } from 'node:fs';

/**
 * Everything credproxy writes under its data folder (store, storage key, admin token, CA,
 * bundle, audit log) is for its own user only: folders 0700, files 0600. Modes are given
 * explicitly rather than left to the umask, which `credproxy start` also narrows to 0o077.
 */
export const PRIVATE_DIR = 0o700;
export const PRIVATE_FILE = 0o600;

/** Creates `dir` (and missing parents) 0700; an existing folder is left as its owner set it. */
export function makePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR });
}

/**
 * Creates `file` empty with mode 0600 unless it exists, and takes group and other bits off an
 * existing one (a file an older credproxy created 0644). Used before a library (SQLite) opens
 * a file with its own default mode.
 */
export function makePrivateFile(file: string): void {
  closeSync(openSync(file, 'a', PRIVATE_FILE));
  tightenIfExists(file);
}

/** chmod go-rwx on `file` when it exists and is open to others; missing files are fine. */
export function tightenIfExists(file: string): void {
  let mode: number;
  try {
    mode = statSync(file).mode;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if ((mode & 0o077) !== 0) chmodSync(file, mode & 0o700);
}
