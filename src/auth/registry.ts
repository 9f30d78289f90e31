import type { SchemeCatalog } from '../config/scheme-definition.js';
import { apiKey } from './api-key.js';
import { awsSigV4 } from './aws-sigv4.js';
import { basic } from './basic.js';
import { bearer } from './bearer.js';
import { jwtBearer } from './jwt-bearer.js';
import { jwt } from './jwt.js';
import { oauth1 } from './oauth1.js';
import { oauth2 } from './oauth2.js';
import { oauth2ClientCredentials } from './oauth2-client-credentials.js';
import type { AnySchemeModule } from './types.js';

/** A catalog of schemes that can also build them: what the config validates against and the runtime builds from. */
export type Schemes = Readonly<Record<string, AnySchemeModule>> & SchemeCatalog;

/**
 * The lookup table of built-in schemes, keyed by `auth.type`. A scheme is one file (its
 * schema entry, what its YAML tells the config, and its code) and one line here; the schema
 * variants, the JSON Schema and AUTH_TYPES all come from this table.
 */
export const SCHEMES: Schemes = catalogOf([oauth2, oauth2ClientCredentials, apiKey, bearer, basic, jwt, jwtBearer, oauth1, awsSigV4]);

/** The auth types this build supports, in the order the docs list them. */
export const AUTH_TYPES: readonly string[] = Object.keys(SCHEMES);

/**
 * A catalog with further schemes (a plugin, a test fixture): pass it to startCredproxy or
 * loadConfig as `schemes`. A type already in `base` is an error, not a silent replacement.
 */
export function withSchemes(base: Schemes, ...extra: AnySchemeModule[]): Schemes {
  for (const m of extra) if (m.type in base) throw new Error(`auth type "${m.type}" is already registered`);
  return catalogOf([...Object.values(base), ...extra]);
}

function catalogOf(modules: readonly AnySchemeModule[]): Schemes {
  const table: Record<string, AnySchemeModule> = {};
  for (const m of modules) table[m.type] = m;
  return Object.freeze(table);
}
