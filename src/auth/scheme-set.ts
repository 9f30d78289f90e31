import type { Config, IntegrationConfig } from '../config/types.js';
import type { Schemes } from './registry.js';
import type { AuthScheme, ResolvedScheme } from './types.js';

/** An integration as a request uses it: its frozen definition and the schemes built from it. */
export interface LiveIntegration extends IntegrationConfig {
  /** one per `auth` entry, in order (the first is the default): definition, scheme, inject */
  readonly live: readonly ResolvedScheme[];
}

/**
 * The scheme instances of one runtime. The config is data; this builds a scheme from each
 * definition and keeps it for as long as the definition stays the same, so a reload that
 * leaves an integration's `auth` entry untouched keeps its minted JWTs, client-credentials
 * tokens and back-off state. An instance is known by integration, type and the definition's
 * fingerprint (a hash that covers the resolved secrets: a rotated key builds a new one).
 */
export class SchemeSet {
  private built = new Map<string, AuthScheme>();

  constructor(readonly catalog: Schemes) {}

  /**
   * The integrations of `config` with their schemes. Instances of definitions that are gone
   * are dropped here; requests that still hold the previous snapshot keep theirs to their end.
   */
  build(config: Config): ReadonlyMap<string, LiveIntegration> {
    const next = new Map<string, AuthScheme>();
    const out = new Map<string, LiveIntegration>();
    for (const integration of config.integrations.values()) {
      const live = integration.schemes.map((definition): ResolvedScheme => {
        const key = `${integration.name}\n${definition.type}\n${definition.fingerprint}`;
        let scheme = next.get(key) ?? this.built.get(key);
        if (!scheme) {
          const module = this.catalog[definition.type];
          // The config was validated against another catalog than this runtime's.
          if (!module) throw new Error(`auth type "${definition.type}" of integration "${integration.name}" is not in this runtime's scheme catalog`);
          // The loader validated this entry against the same module's spec: its config has that type.
          scheme = module.create(definition as never);
        }
        next.set(key, scheme);
        return { definition, scheme, inject: definition.inject };
      });
      out.set(integration.name, Object.freeze({ ...integration, live }));
    }
    this.built = next;
    return out;
  }
}
