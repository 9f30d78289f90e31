/**
 * `{{name}}` templates, compiled once when the config loads so a request only joins
 * strings. A name with no value is an error the caller turns into a clear answer, never
 * an empty credential sent upstream.
 */
export interface Template {
  readonly source: string;
  readonly names: readonly string[];
  render(values: Readonly<Record<string, string | undefined>>): string;
}

export class MissingValueError extends Error {
  constructor(readonly missing: string) {
    super(`no value for {{${missing}}}`);
  }
}

const PART = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;

export function compileTemplate(source: string): Template {
  const literals: string[] = [];
  const names: string[] = [];
  let last = 0;
  for (const m of source.matchAll(PART)) {
    literals.push(source.slice(last, m.index));
    names.push(m[1]!);
    last = m.index + m[0].length;
  }
  literals.push(source.slice(last));
  if (names.length === 0) return { source, names, render: () => source };
  return {
    source,
    names,
    render(values) {
      let out = literals[0]!;
      for (let i = 0; i < names.length; i++) {
        const v = values[names[i]!];
        if (v === undefined) throw new MissingValueError(names[i]!);
        out += v + literals[i + 1]!;
      }
      return out;
    },
  };
}
