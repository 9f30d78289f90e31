import type { AuthDefinition, SchemeConfig } from '../../src/config/scheme-definition.js';
import { fingerprintOf } from '../../src/config/scheme-definition.js';
import type { ObjectSpec } from '../../src/config/spec.js';
import type { SchemeModule } from '../../src/auth/types.js';

/**
 * The definition the loader would make of one `auth` entry, for tests that build a scheme
 * by hand (signature vectors, field handling). No inject is compiled: tests that need one go
 * through loadConfig. Problems the definition finds fail the test's set-up loudly.
 */
export function definitionOf<S extends ObjectSpec>(module: SchemeModule<S>, config: SchemeConfig<S>, names: string[] = ['entity']): AuthDefinition<SchemeConfig<S>> {
  const { traits, problems = [] } = module.describe(config, { names: new Set(names) });
  if (problems.length > 0) throw new Error(`definitionOf(${module.type}): ${problems.map((p) => p.message).join('; ')}`);
  return { type: config.type, config, traits, inject: { headers: [], query: [] }, fingerprint: fingerprintOf(config) };
}
