import { isMap, isScalar, isSeq, type LineCounter, type Node } from 'yaml';

/**
 * A small schema language for the YAML files. It validates the parsed YAML nodes (not plain
 * values) so that every error can name the line it comes from, it collects every error in
 * one pass rather than stopping at the first, and it is the one source the JSON Schema for
 * editors can be generated from.
 */
export type Spec = StringSpec | IntSpec | BoolSpec | ArraySpec | ObjectSpec | MapSpec | OneOfSpec | TaggedSpec;

export interface IntSpec {
  kind: 'int';
  min?: number;
  max?: number;
  description?: string;
}
export interface BoolSpec {
  kind: 'bool';
  description?: string;
}
export interface ArraySpec<I extends Spec = Spec> {
  kind: 'array';
  items: I;
  minItems?: number;
  description?: string;
}
export interface MapSpec<V extends Spec = Spec> {
  kind: 'map';
  values: V;
  keyPattern?: RegExp;
  keyHint?: string;
  description?: string;
}
export interface OneOfSpec<O extends readonly Spec[] = readonly Spec[]> {
  kind: 'oneOf';
  options: O;
  description?: string;
  hint: string;
}

export interface StringSpec<E extends string = string> {
  kind: 'string';
  pattern?: RegExp;
  /** Said in the error when the pattern does not match. */
  hint?: string;
  enum?: readonly E[];
  minLength?: number;
  /** PEM keys and the like span lines; every other string refuses control characters. */
  multiline?: boolean;
  /** Further checks that need code; returns a message when the value is wrong. */
  check?: (value: string) => string | undefined;
  description?: string;
}

export interface ObjectSpec<P extends Record<string, Spec> = Record<string, Spec>, R extends keyof P = keyof P> {
  kind: 'object';
  props: P;
  required?: readonly R[];
  description?: string;
}

/**
 * The value a Spec validates to, as a type: a scheme types its `auth` entry from its own
 * spec (`SpecValue<typeof spec>`) instead of casting each key where it reads it.
 */
export type SpecValue<S> = Spec extends S
  ? unknown // the general Spec says nothing (and recursing into it would never end)
  : S extends StringSpec<infer E>
  ? E
  : S extends IntSpec
    ? number
    : S extends BoolSpec
      ? boolean
      : S extends ArraySpec<infer I>
        ? Array<SpecValue<I>>
        : S extends ObjectSpec<infer P, infer R>
          ? Simplify<{ [K in R & keyof P]: SpecValue<P[K]> } & { [K in Exclude<keyof P, R>]?: SpecValue<P[K]> }>
          : S extends MapSpec<infer V>
            ? Record<string, SpecValue<V>>
            : S extends OneOfSpec<infer O>
              ? SpecValue<O[number]>
              : unknown;
type Simplify<T> = { [K in keyof T]: T[K] } & {};

/** An object whose allowed keys depend on a tag key (auth.type). */
export interface TaggedSpec {
  kind: 'tagged';
  tag: string;
  variants: Record<string, ObjectSpec>;
  description?: string;
}

export interface Problem {
  file: string;
  line: number;
  message: string;
}

export interface SpecContext {
  file: string;
  lines: LineCounter;
  env: NodeJS.ProcessEnv;
  problems: Problem[];
}

const ENV_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

export function lineOf(ctx: SpecContext, node: Node | null | undefined): number {
  const offset = node?.range?.[0];
  return offset === undefined ? 1 : ctx.lines.linePos(offset).line;
}

function report(ctx: SpecContext, node: Node | null | undefined, message: string): undefined {
  ctx.problems.push({ file: ctx.file, line: lineOf(ctx, node), message });
  return undefined;
}

/** Replaces `${NAME}` with the environment variable; a missing one is a problem at that line. */
function interpolate(ctx: SpecContext, node: Node, raw: string, path: string): string | undefined {
  let missing = false;
  const out = raw.replace(ENV_REF, (_m, name: string) => {
    const value = ctx.env[name];
    if (value === undefined) {
      missing = true;
      report(ctx, node, `${path}: environment variable ${name} is not set`);
      return '';
    }
    // Secrets read from files (`export X=$(cat f)` keeps none, `X="$(< f)"` neither, but
    // env files and orchestrators often keep the final newline): never part of the value.
    return value.replace(/\r?\n$/, '');
  });
  return missing ? undefined : out;
}

function describe(spec: Spec): string {
  switch (spec.kind) {
    case 'string':
      return spec.enum ? `one of ${spec.enum.join(', ')}` : 'a string';
    case 'int':
      return 'a whole number';
    case 'bool':
      return 'true or false';
    case 'array':
      return 'a list';
    case 'object':
    case 'map':
    case 'tagged':
      return 'a mapping';
    case 'oneOf':
      return spec.hint;
  }
}

/** Validates `node` against `spec`; returns the plain value, or undefined after reporting. */
export function validate(ctx: SpecContext, spec: Spec, node: Node | null | undefined, path: string): unknown {
  switch (spec.kind) {
    case 'string': {
      if (!isScalar(node) || node.value === null || typeof node.value === 'object') {
        return report(ctx, node, `${path}: expected ${describe(spec)}`);
      }
      const raw = String(node.value);
      const value = interpolate(ctx, node, raw, path);
      if (value === undefined) return undefined;
      const control = spec.multiline ? /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/ : /[\u0000-\u0008\u000a-\u001f\u007f]/;
      if (control.test(value)) {
        return report(ctx, node, `${path}: control characters (CR, LF, …) are not allowed`);
      }
      if (spec.enum && !spec.enum.includes(value)) {
        return report(ctx, node, `${path}: "${value}" is not allowed; expected one of ${spec.enum.join(', ')}`);
      }
      if (spec.minLength !== undefined && value.length < spec.minLength) {
        return report(ctx, node, spec.minLength > 1 ? `${path}: must be at least ${spec.minLength} characters` : `${path}: must not be empty`);
      }
      if (spec.pattern && !spec.pattern.test(value)) {
        return report(ctx, node, `${path}: "${value}" is not ${spec.hint ?? `of the form ${spec.pattern.source}`}`);
      }
      const problem = spec.check?.(value);
      if (problem) return report(ctx, node, `${path}: ${problem}`);
      return value;
    }
    case 'int': {
      if (!isScalar(node) || typeof node.value !== 'number' || !Number.isInteger(node.value)) {
        return report(ctx, node, `${path}: expected a whole number`);
      }
      if ((spec.min !== undefined && node.value < spec.min) || (spec.max !== undefined && node.value > spec.max)) {
        return report(ctx, node, `${path}: ${node.value} is out of range (${spec.min ?? '…'} to ${spec.max ?? '…'})`);
      }
      return node.value;
    }
    case 'bool': {
      if (!isScalar(node) || typeof node.value !== 'boolean') return report(ctx, node, `${path}: expected true or false`);
      return node.value;
    }
    case 'array': {
      if (!isSeq(node)) {
        return report(ctx, node, `${path}: expected a list`);
      }
      if (spec.minItems !== undefined && node.items.length < spec.minItems) {
        return report(ctx, node, `${path}: needs at least ${spec.minItems} item${spec.minItems === 1 ? '' : 's'}`);
      }
      const out: unknown[] = [];
      let ok = true;
      node.items.forEach((item, i) => {
        const value = validate(ctx, spec.items, item as Node, `${path}[${i}]`);
        if (value === undefined) ok = false;
        out.push(value);
      });
      return ok ? out : undefined;
    }
    case 'map': {
      if (!isMap(node)) return report(ctx, node, `${path}: expected a mapping`);
      const out: Record<string, unknown> = {};
      let ok = true;
      for (const pair of node.items) {
        const keyNode = pair.key as Node;
        const key = isScalar(keyNode) ? String(keyNode.value) : '';
        if (spec.keyPattern && !spec.keyPattern.test(key)) {
          report(ctx, keyNode, `${path}: "${key}" is not ${spec.keyHint ?? 'an allowed key'}`);
          ok = false;
          continue;
        }
        const value = validate(ctx, spec.values, pair.value as Node, `${path}.${key}`);
        if (value === undefined) ok = false;
        out[key] = value;
      }
      return ok ? out : undefined;
    }
    case 'object':
      return validateObject(ctx, spec, node, path);
    case 'tagged': {
      if (!isMap(node)) return report(ctx, node, `${path}: expected a mapping`);
      const tagNode = node.get(spec.tag, true) as Node | undefined;
      const names = Object.keys(spec.variants);
      if (tagNode === undefined) return report(ctx, node, `${path}: "${spec.tag}" is required (one of ${names.join(', ')})`);
      const tag = isScalar(tagNode) ? String(tagNode.value) : '';
      const variant = spec.variants[tag];
      if (!variant) return report(ctx, tagNode, `${path}.${spec.tag}: "${tag}" is not allowed; expected one of ${names.join(', ')}`);
      return validateObject(ctx, variant, node, path);
    }
    case 'oneOf': {
      // Pick the option whose shape fits the node (a scalar, a list or a mapping); the
      // options of one oneOf never share a shape, so errors come from the one that fits.
      const shape = isSeq(node) ? 'array' : isMap(node) ? 'mapping' : 'scalar';
      const option = spec.options.find((o) => shapeOf(o) === shape);
      if (!option) return report(ctx, node, `${path}: expected ${spec.hint}`);
      return validate(ctx, option, node, path);
    }
  }
}

function shapeOf(spec: Spec): 'array' | 'mapping' | 'scalar' {
  if (spec.kind === 'array') return 'array';
  if (spec.kind === 'object' || spec.kind === 'map' || spec.kind === 'tagged') return 'mapping';
  return 'scalar';
}

function validateObject(ctx: SpecContext, spec: ObjectSpec, node: Node | null | undefined, path: string): unknown {
  if (!isMap(node)) return report(ctx, node, `${path || 'file'}: expected a mapping`);
  const out: Record<string, unknown> = {};
  let ok = true;
  const seen = new Set<string>();
  for (const pair of node.items) {
    const keyNode = pair.key as Node;
    const key = isScalar(keyNode) ? String(keyNode.value) : '';
    const sub = path ? `${path}.${key}` : key;
    const propSpec = spec.props[key];
    if (!propSpec) {
      const allowed = Object.keys(spec.props).join(', ');
      report(ctx, keyNode, `${sub}: unknown key; allowed here: ${allowed}`);
      ok = false;
      continue;
    }
    seen.add(key);
    const valueNode = pair.value as Node | null;
    if (valueNode === null || (isScalar(valueNode) && valueNode.value === null)) {
      // `key:` with nothing after it is treated as absent, which is what a user who
      // commented out the value expects.
      seen.delete(key);
      continue;
    }
    const value = validate(ctx, propSpec, valueNode, sub);
    if (value === undefined) ok = false;
    else out[key] = value;
  }
  for (const key of spec.required ?? []) {
    if (!seen.has(key)) {
      report(ctx, node, `${path ? `${path}.` : ''}${key}: is required`);
      ok = false;
    }
  }
  return ok ? out : undefined;
}

// Shorthands that keep the schemas readable; they keep the literal types SpecValue reads.
export const str = <const E extends string = string>(o: Omit<StringSpec<E>, 'kind'> = {}): StringSpec<E> => ({ kind: 'string', ...o });
export const int = (min?: number, max?: number): IntSpec => ({ kind: 'int', min, max });
export const bool = (): BoolSpec => ({ kind: 'bool' });
export const list = <I extends Spec>(items: I, minItems?: number): ArraySpec<I> => ({ kind: 'array', items, minItems });
export const map = <V extends Spec>(values: V, o: Omit<MapSpec<V>, 'kind' | 'values'> = {}): MapSpec<V> => ({ kind: 'map', values, ...o });
export const oneOf = <const O extends readonly Spec[]>(hint: string, ...options: O): OneOfSpec<O> => ({ kind: 'oneOf', hint, options });
export const obj = <P extends Record<string, Spec>, const R extends keyof P = never>(props: P, required: readonly R[] = []): ObjectSpec<P, NoInfer<R>> => ({
  kind: 'object',
  props,
  required,
});
