import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BUNDLE_FILE } from '../tls/bundle.js';
import { PRIVATE_FILE, tightenIfExists } from '../store/private-files.js';
import { writeBundle } from './agent-env.js';
import { trustStoreP12 } from './truststore.js';

export interface ClientFiles {
  /** system CAs + credproxy's, PEM: the CA variables of curl, Python, Node, Go, git */
  bundle: string;
  /** `ca_certificate = <bundle>`, for wget through WGETRC (GnuTLS wget reads no CA variable) */
  wgetrc: string;
  /** the bundle as a PKCS#12 trust store, for Java */
  trustStore: string;
}

export const WGETRC_FILE = 'wgetrc';
export const TRUST_STORE_FILE = 'bundle.p12';

/** Writes `file` only when its content changes, so concurrent `run`s do not rewrite it under each other. */
function writeIfChanged(file: string, content: Buffer | string): void {
  const next = Buffer.from(content);
  if (existsSync(file)) {
    try {
      if (readFileSync(file).equals(next)) return;
    } catch {
      /* unreadable: rewrite */
    }
  }
  writeFileSync(file, next, { mode: PRIVATE_FILE });
  tightenIfExists(file);
}

/** The files `credproxy env` and `run` point clients at, all in `tls.ca_dir`, all absolute. */
export function writeClientFiles(caDir: string, caPem: string, env: NodeJS.ProcessEnv): ClientFiles {
  const bundle = writeBundle(join(caDir, BUNDLE_FILE), caPem, env);
  const wgetrc = join(caDir, WGETRC_FILE);
  writeIfChanged(wgetrc, `# written by credproxy env / run: wget trusts credproxy's bundle\nca_certificate = ${bundle}\n`);
  const trustStore = join(caDir, TRUST_STORE_FILE);
  writeIfChanged(trustStore, trustStoreP12(readFileSync(bundle, 'utf8')));
  return { bundle, wgetrc, trustStore };
}
