import { createHash } from 'node:crypto';
import type { ObjectSpec, SpecValue } from './spec.js';
import type { Template } from './template.js';

/**
 * What the config knows of an auth scheme: its schema entry and what its YAML says, checked.
 * The scheme's code (src/auth/) supplies these through a catalog the loader is given, so the
 * config layer never builds a scheme: the runtime does, from the frozen definitions, and
 * keeps each instance (and its minted tokens) across a reload that leaves it unchanged.
 */

/** Headers and query parameters to inject, as the YAML writes them ({{name}} templates). */
export interface InjectConfig {
  headers?: Record<string, string>;
  query?: Record<string, string>;
}

/** A credential field a connection supplies (shown by GET /api/integrations). */
export interface FieldInfo {
  name: string;
  secret: boolean;
  optional: boolean;
  pattern?: RegExp;
  description?: string;
  /** where a user finds this value (the connect page's "Where do I find this?") */
  docsUrl?: string;
  /** the value spans lines (a PEM key): the connect page asks for it in a text area */
  multiline?: boolean;
}

export interface CompiledInject {
  headers: ReadonlyArray<{ name: string; lower: string; value: Template }>;
  query: ReadonlyArray<{ name: string; value: Template }>;
}

/** A problem with a scheme's own YAML that only code can find (a key that does not parse). */
export interface SchemeProblem {
  /** path below the `auth` entry, e.g. ['private_key'] or ['claims', 'sub']: the error names that line */
  key: (string | number)[];
  message: string;
}

/** What the config loader tells a scheme about its integration. */
export interface SchemeCheckContext {
  /** template names the integration supplies besides the scheme's own fields: entity and the params */
  names: ReadonlySet<string>;
}

/**
 * The capabilities of one configured scheme, read from its YAML alone. Code that must treat
 * schemes differently (the API's view, the connect flow, host-param checks) asks these, never
 * the type name, so a new scheme needs no edit outside its own file.
 */
export interface SchemeTraits {
  /** credential fields a connection supplies */
  readonly fields: readonly FieldInfo[];
  /** template names the scheme computes itself, besides the fields (e.g. basic_auth, jwt) */
  readonly computed: readonly string[];
  /** whether a request needs a stored connection (DESIGN.md: "Which requests need a stored connection") */
  readonly needsConnection: boolean;
  /** the inject used when the config gives none */
  readonly defaultInject: InjectConfig;
  /** the scheme signs each request itself (oauth1, aws_sigv4), so an inject is optional */
  readonly signs: boolean;
  /** 'oauth2': a connection is made through a connect link to the provider's authorize URL */
  readonly connectable?: 'oauth2';
  /** keys holding URLs whose authority may name params: such params must be single DNS labels */
  readonly hostUrlKeys: readonly string[];
  /** keys holding URL templates filled from params alone: each `{{name}}` must be a declared param */
  readonly paramUrlKeys: readonly string[];
}

/** An `auth` entry as its spec validates it: `type` plus the keys of its variant. */
export type SchemeConfig<S extends ObjectSpec> = ObjectSpec extends S ? { readonly type: string; readonly [key: string]: unknown } : SpecValue<S> & { type: string };

/**
 * One entry of the scheme catalog (mockttp style: one table keyed by `auth.type`). `spec` is
 * the scheme's schema entry; `describe` reads a validated entry, without building the scheme.
 */
export interface SchemeDefinition<S extends ObjectSpec = ObjectSpec> {
  readonly type: string;
  readonly spec: S;
  describe(config: SchemeConfig<S>, ctx: SchemeCheckContext): SchemeDescription;
}

/** What a definition finds in one entry. */
export interface SchemeDescription {
  traits: SchemeTraits;
  problems?: SchemeProblem[];
  /**
   * Secrets the entry refers to rather than holds (`file:` keys), as read now: part of the
   * fingerprint, so a key file rotated in place makes a new definition. Hashed, never kept.
   */
  resolved?: Readonly<Record<string, string>>;
}

/**
 * A definition with its entry type erased, as the catalog holds it: the loader calls
 * `describe` only with an entry that `spec` validated, which is the type the scheme declared.
 */
export interface CatalogEntry {
  readonly type: string;
  readonly spec: ObjectSpec;
  describe(config: never, ctx: SchemeCheckContext): SchemeDescription;
}

/** The schemes a config may use, keyed by type (src/auth/registry.ts has the built-in ones). */
export type SchemeCatalog = Readonly<Record<string, CatalogEntry>>;

/** One `auth` entry of a loaded integration: frozen data, the same on every load of the same YAML. */
export interface AuthDefinition<C = { readonly type: string; readonly [key: string]: unknown }> {
  readonly type: string;
  readonly config: C;
  readonly traits: SchemeTraits;
  readonly inject: CompiledInject;
  /**
   * A hash of the canonical entry, resolved secrets included, so a rotated secret is a new
   * definition. The runtime keeps a scheme instance while this stays the same. The input
   * holds secrets: it is hashed here and never logged.
   */
  readonly fingerprint: string;
}

/** JSON with object keys sorted, so two equal definitions hash alike whatever the key order. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export function fingerprintOf(value: unknown): string {
  return createHash('sha256').update(canonical(value)).digest('base64url');
}
