import type { FieldConfig } from '../config/types.js';
import { CredproxyError } from '../errors.js';
import type { FieldInfo, SchemeTraits } from '../config/scheme-definition.js';

/** Control characters would let a stored value split an injected header. */
export const CONTROL = /[\u0000-\u001f\u007f]/;

export function fieldInfos(configured: ReadonlyArray<FieldConfig | string> | undefined, fallback: FieldInfo[]): FieldInfo[] {
  if (!configured) return fallback;
  return configured.map((f) =>
    typeof f === 'string'
      ? { name: f, secret: true, optional: false }
      : {
          name: f.name,
          secret: f.secret ?? true,
          optional: f.optional ?? false,
          pattern: f.pattern === undefined ? undefined : new RegExp(f.pattern),
          description: f.description,
          docsUrl: f.docs_url,
        },
  );
}

/** Checks one credential value; the message never repeats the value (it may be a secret). */
export function checkValue(name: string, value: unknown, pattern?: RegExp): string {
  if (typeof value !== 'string') throw new CredproxyError('bad_request', `credentials.${name} must be a string`);
  if (value === '') throw new CredproxyError('bad_request', `credentials.${name} must not be empty`);
  if (CONTROL.test(value)) throw new CredproxyError('bad_request', `credentials.${name} contains control characters (CR, LF, …)`);
  if (pattern && !pattern.test(value)) {
    throw new CredproxyError('bad_request', `credentials.${name} does not match the pattern ${pattern.source}`);
  }
  return value;
}

/** Accepts exactly the declared fields: required ones present, no unknown ones. */
export function acceptFields(fields: readonly FieldInfo[], input: Record<string, unknown>): Record<string, string> {
  const known = new Set(fields.map((f) => f.name));
  const unknown = Object.keys(input).filter((k) => !known.has(k));
  if (unknown.length > 0) {
    throw new CredproxyError('bad_request', `credentials: unknown field ${unknown.join(', ')}; expected ${[...known].join(', ')}`);
  }
  const out: Record<string, string> = {};
  for (const f of fields) {
    const v = input[f.name];
    if (v === undefined || v === null) {
      if (!f.optional) throw new CredproxyError('bad_request', `credentials.${f.name} is required`);
      continue;
    }
    out[f.name] = checkValue(f.name, v, f.pattern);
  }
  return out;
}

/** A scheme's traits, with the defaults most schemes share: a stored connection, no URLs, an inject. */
export function traits(t: Pick<SchemeTraits, 'fields' | 'defaultInject'> & Partial<SchemeTraits>): SchemeTraits {
  return { computed: [], needsConnection: true, signs: false, hostUrlKeys: [], paramUrlKeys: [], ...t };
}
