import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { ConfigError } from '../config/load.js';
import type { Problem } from '../config/spec.js';

/**
 * What `credproxy env` and `credproxy run` need from the config folder, and nothing more:
 * whether HTTPS is intercepted and where the CA lives, the integrations' `placeholder_env`,
 * and the names of the environment variables the config refers to as `${VAR}` (the server's
 * secrets, kept from the agent). The full loader expands and validates every `${VAR}`, so the
 * agent side would need the server's secrets just to start; this reads the YAML only.
 */
export interface AgentConfig {
  intercept: boolean;
  /** absolute: a relative `tls.ca_dir` is resolved against the config folder */
  caDir: string;
  placeholders: string[];
  /** where an embedded store keeps the generated admin token (`<data>/admin.token`), absolute */
  dataDir?: string;
  /** every integration's `hosts` entries, as written */
  hosts: string[];
  /** every `${VAR}` named in a value of credproxy.yaml or an integration file */
  envRefs: string[];
}

const ENV_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;
const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function parse(file: string, problems: Problem[]): unknown {
  const doc = parseDocument(readFileSync(file, 'utf8'), { prettyErrors: false });
  if (doc.errors.length > 0) {
    problems.push({ file, line: doc.errors[0]!.linePos?.[0]?.line ?? 1, message: doc.errors[0]!.message.split('\n')[0] ?? 'YAML error' });
    return undefined;
  }
  return doc.toJS() as unknown;
}

/** Every `${VAR}` in the string values (and keys) of a parsed document; comments do not count. */
function collectRefs(value: unknown, into: Set<string>): void {
  if (typeof value === 'string') {
    for (const m of value.matchAll(ENV_REF)) into.add(m[1]!);
  } else if (Array.isArray(value)) {
    for (const v of value) collectRefs(v, into);
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      collectRefs(k, into);
      collectRefs(v, into);
    }
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

export function readAgentConfig(dir: string, env: NodeJS.ProcessEnv): AgentConfig {
  if (!existsSync(dir)) throw new ConfigError([{ file: dir, line: 1, message: 'config folder does not exist' }]);
  const problems: Problem[] = [];
  const refs = new Set<string>();
  let intercept = true;
  let caDir = './data/ca';
  let store: unknown = 'sqlite:./data/credproxy.db';
  const settingsFile = ['credproxy.yaml', 'credproxy.yml'].map((f) => join(dir, f)).find((f) => existsSync(f));
  if (settingsFile) {
    const raw = parse(settingsFile, problems);
    collectRefs(raw, refs);
    if (isObject(raw) && typeof raw.store === 'string' && raw.store !== '') store = raw.store;
    const tls = isObject(raw) ? raw.tls : undefined;
    if (isObject(tls)) {
      if (tls.intercept !== undefined) {
        if (typeof tls.intercept === 'boolean') intercept = tls.intercept;
        else problems.push({ file: settingsFile, line: 1, message: 'tls.intercept: expected true or false' });
      }
      if (tls.ca_dir !== undefined) {
        if (typeof tls.ca_dir === 'string' && tls.ca_dir !== '') caDir = expand(tls.ca_dir, env, settingsFile, problems);
        else problems.push({ file: settingsFile, line: 1, message: 'tls.ca_dir: expected a folder path' });
      }
    }
  }
  const placeholders = new Set<string>();
  const hosts: string[] = [];
  const intDir = join(dir, 'integrations');
  const files = existsSync(intDir) ? readdirSync(intDir).filter((f) => /\.ya?ml$/.test(f)).sort() : [];
  for (const f of files) {
    const file = join(intDir, f);
    const raw = parse(file, problems);
    collectRefs(raw, refs);
    const listed = isObject(raw) ? raw.hosts : undefined;
    if (Array.isArray(listed)) for (const h of listed) if (typeof h === 'string') hosts.push(h);
    const name = isObject(raw) ? raw.placeholder_env : undefined;
    if (name === undefined) continue;
    if (typeof name === 'string' && VAR_NAME.test(name)) placeholders.add(name);
    else problems.push({ file, line: 1, message: 'placeholder_env: expected an environment variable name' });
  }
  if (problems.length > 0) throw new ConfigError(problems);
  // As the server reads it (config/load.ts): relative to the folder of credproxy.yaml.
  const base = resolve(dir);
  const at = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  const dataDir = typeof store === 'string' && store.startsWith('sqlite:') && !store.includes('${') ? resolve(at(store.slice('sqlite:'.length)), '..') : undefined;
  return { intercept, caDir: at(caDir), dataDir, placeholders: [...placeholders], hosts, envRefs: [...refs] };
}

/** `${VAR}` in ca_dir, the one value read here that may name a variable. */
function expand(value: string, env: NodeJS.ProcessEnv, file: string, problems: Problem[]): string {
  return value.replace(ENV_REF, (_m, name: string) => {
    const v = env[name];
    if (v === undefined) problems.push({ file, line: 1, message: `tls.ca_dir: environment variable ${name} is not set` });
    return v ?? '';
  });
}
