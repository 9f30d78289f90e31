import { CredproxyError } from '../errors.js';

/**
 * Small typed validators that also are their JSON Schema: the admin API checks request bodies
 * with `check`, the OpenAPI document (api/openapi.ts) prints `schema`, and the client's types
 * are `Infer<>` of the same values. One definition, so the three cannot drift. The subset of
 * JSON Schema is the one the API needs; anything richer (a param's pattern from the YAML, an
 * integration's scheme) is checked by the handler after this.
 */
export type JsonSchema = Record<string, unknown>;

export interface Type<V> {
  readonly schema: JsonSchema;
  /** The value, typed, or a 400 bad_request whose message names `path`. */
  check(value: unknown, path: string): V;
  /** never set: carries V for Infer */
  readonly _v?: V;
}

export interface Optional<V> extends Type<V> {
  readonly optional: true;
}

export type Infer<T> = T extends Type<infer V> ? V : never;

type Simplify<T> = { [K in keyof T]: T[K] } & {};
type Shape = Record<string, Type<unknown>>;
type ObjectOf<S extends Shape> = Simplify<
  { [K in keyof S as S[K] extends Optional<unknown> ? never : K]: Infer<S[K]> } & { [K in keyof S as S[K] extends Optional<unknown> ? K : never]?: Infer<S[K]> }
>;

interface Common {
  description?: string;
  /** replaces "must be …" in the error message, for a check with more to say than its type */
  message?: string;
}

const fail = (path: string, what: string): never => {
  throw new CredproxyError('bad_request', `${path || 'the body'} ${what}`);
};
const meta = (o: Common) => (o.description === undefined ? {} : { description: o.description });

function leaf<V>(schema: JsonSchema, o: Common, expected: string, ok: (v: unknown) => boolean): Type<V> {
  return { schema: { ...schema, ...meta(o) }, check: (v, path) => (ok(v) ? (v as V) : fail(path, o.message ?? `must be ${expected}`)) };
}

export function string<E extends string = string>(o: Common & { enum?: readonly E[]; pattern?: string; minLength?: number; maxLength?: number; format?: string } = {}): Type<E> {
  const { enum: values, pattern, minLength, maxLength, format } = o;
  const re = pattern === undefined ? undefined : new RegExp(pattern);
  const schema = { type: 'string', ...(values ? { enum: [...values] } : {}), ...(pattern ? { pattern } : {}), ...(minLength ? { minLength } : {}), ...(maxLength ? { maxLength } : {}), ...(format ? { format } : {}) };
  const what = values ? `one of ${values.join(', ')}` : 'a string';
  return leaf<E>(schema, o, what, (v) =>
    typeof v === 'string' && (!values || values.includes(v as E)) && (!re || re.test(v)) && v.length >= (minLength ?? 0) && v.length <= (maxLength ?? Infinity),
  );
}

export function integer(o: Common & { minimum?: number; maximum?: number } = {}): Type<number> {
  const range = o.minimum !== undefined && o.maximum !== undefined ? ` from ${o.minimum} to ${o.maximum}` : '';
  return leaf<number>({ type: 'integer', ...(o.minimum === undefined ? {} : { minimum: o.minimum }), ...(o.maximum === undefined ? {} : { maximum: o.maximum }) }, o, `a whole number${range}`, (v) =>
    Number.isInteger(v) && (v as number) >= (o.minimum ?? -Infinity) && (v as number) <= (o.maximum ?? Infinity),
  );
}

export const number = (o: Common = {}) => leaf<number>({ type: 'number' }, o, 'a number', (v) => typeof v === 'number' && Number.isFinite(v));
export const boolean = (o: Common = {}) => leaf<boolean>({ type: 'boolean' }, o, 'true or false', (v) => typeof v === 'boolean');
/** Any JSON value: what a scheme-specific field holds before the scheme checks it. */
export const anyValue = (o: Common = {}): Type<unknown> => ({ schema: { ...meta(o) }, check: (v) => v });

export function nullable<V>(t: Type<V>): Type<V | null> {
  const type = t.schema.type;
  const schema = typeof type === 'string' ? { ...t.schema, type: [type, 'null'] } : { anyOf: [t.schema, { type: 'null' }] };
  return { schema, check: (v, path) => (v === null ? null : t.check(v, path)) };
}

export function optional<V>(t: Type<V>): Optional<V> {
  return { ...t, optional: true };
}

export function array<V>(item: Type<V>, o: Common & { minItems?: number } = {}): Type<V[]> {
  return {
    schema: { type: 'array', items: item.schema, ...(o.minItems ? { minItems: o.minItems } : {}), ...meta(o) },
    check(v, path) {
      if (!Array.isArray(v) || v.length < (o.minItems ?? 0)) return fail(path, o.message ?? `must be a list${o.minItems ? ` of at least ${o.minItems}` : ''}`);
      return v.map((x, i) => (o.message ? leafOrFail(item, x, path, o.message) : item.check(x, `${path}[${i}]`)));
    },
  };
}

/** An item of a list whose own message covers its items ("a non-empty list of names"). */
function leafOrFail<V>(item: Type<V>, x: unknown, path: string, message: string): V {
  try {
    return item.check(x, path);
  } catch {
    return fail(path, message);
  }
}

/** An object of any keys, each value of type `t`. */
export function record<V>(t: Type<V>, o: Common = {}): Type<Record<string, V>> {
  return {
    schema: { type: 'object', additionalProperties: t.schema, ...meta(o) },
    check(v, path) {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) return fail(path, o.message ?? 'must be an object');
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, t.check(x, path ? `${path}.${k}` : k)]));
    },
  };
}

/** An object with exactly these keys (others are refused, and named): request bodies and the documented answers. */
export function object<S extends Shape>(shape: S, o: Common = {}): Type<ObjectOf<S>> {
  const keys = Object.keys(shape);
  const required = keys.filter((k) => !(shape[k] as Partial<Optional<unknown>>).optional);
  return {
    schema: {
      type: 'object',
      properties: Object.fromEntries(keys.map((k) => [k, shape[k]!.schema])),
      ...(required.length > 0 ? { required } : {}),
      additionalProperties: false,
      ...meta(o),
    },
    check(v, path) {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) return fail(path, o.message ?? 'must be an object');
      const given = v as Record<string, unknown>;
      const extra = Object.keys(given).filter((k) => !keys.includes(k));
      if (extra.length > 0) throw new CredproxyError('bad_request', `${path ? `${path}: ` : ''}unknown key ${extra.join(', ')}; expected ${keys.join(', ')}`);
      const out: Record<string, unknown> = {};
      for (const k of keys) {
        const t = shape[k]!;
        const at = path ? `${path}.${k}` : k;
        if (given[k] === undefined) {
          // A required key left out gets the message of a wrong value: "credentials must be an object".
          if (!(t as Partial<Optional<unknown>>).optional) t.check(undefined, at);
          continue;
        }
        out[k] = t.check(given[k], at);
      }
      return out as ObjectOf<S>;
    },
  };
}
