import { SCHEMES } from '../../src/auth/registry.js';
import { ConfigError, loadConfig as load, type LoadOptions } from '../../src/config/load.js';
import type { Config } from '../../src/config/types.js';

export { ConfigError };

/** loadConfig with the built-in schemes, as credproxy itself loads (opts.schemes replaces them). */
export function loadConfig(dir: string, opts: LoadOptions = {}): Config {
  return load(dir, { schemes: SCHEMES, ...opts });
}

/** Loads a config folder and returns its problems as `file:line: message`, file names relative to the folder; [] when it loads. */
export function problemsOf(dir: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    loadConfig(dir, { env });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.problems.map((p) => `${p.file.slice(dir.length + 1)}:${p.line}: ${p.message}`);
  }
  return [];
}
