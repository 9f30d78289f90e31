import { ConfigError, loadConfig } from '../../src/config/load.js';

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
