import { escapeHtml } from './page.js';

/**
 * The inputs of the connect page's forms: the integration's params and a scheme's fields, each
 * with a label, its description and format as text tied to it (aria-describedby), and secrets
 * in password inputs the browser neither fills nor remembers. A secret is never written back
 * into a page, not even after an error; the user types it again.
 */

export interface ParamView {
  name: string;
  pattern?: string;
  description?: string;
  default?: string;
}

export interface FieldView {
  name: string;
  secret: boolean;
  optional: boolean;
  pattern?: string;
  description?: string;
  /** a page that says where to find this value ("Where do I find this?") */
  docsUrl?: string;
  /** spans lines (a PEM key): a text area, since an input drops line breaks */
  multiline?: boolean;
}

/** Form names: params and fields never collide with each other or with token, csrf, step, scheme. */
export const paramInput = (name: string) => `p.${name}`;
export const fieldInput = (name: string) => `f.${name}`;

/** `api_key` → `API key`: the name as a label a person reads (the name itself stays in the hint-free form data). */
export const humanName = (name: string) => {
  const words = name.replace(/_/g, ' ').replace(/\b(api|url|id|jwt)\b/gi, (w) => w.toUpperCase());
  return words.charAt(0).toUpperCase() + words.slice(1);
};

const idOf = (input: string) => input.replace(/[^A-Za-z0-9_-]/g, '-');

export const hidden = (name: string, value: string) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`;

interface InputOptions {
  input: string;
  label: string;
  description?: string;
  pattern?: string;
  docsUrl?: string;
  required: boolean;
  secret: boolean;
  multiline?: boolean;
  value?: string;
}

function inputHtml(o: InputOptions): string {
  const id = idOf(o.input);
  const hints: string[] = [];
  if (o.description) hints.push(escapeHtml(/[.!?…]$/.test(o.description) ? o.description : `${o.description}.`));
  if (o.pattern) hints.push(`Format: <code>${escapeHtml(o.pattern)}</code>`);
  if (!o.required) hints.push('Optional.');
  if (o.docsUrl) hints.push(`<a href="${escapeHtml(o.docsUrl)}" target="_blank" rel="noopener noreferrer">Where do I find this?</a>`);
  const hint = hints.length ? `<p class="hint" id="${id}-hint">${hints.join(' ')}</p>` : '';
  const attrs = [
    `id="${id}"`,
    `name="${escapeHtml(o.input)}"`,
    o.multiline ? 'rows="6"' : `type="${o.secret ? 'password' : 'text'}"`,
    'autocomplete="off"',
    'autocapitalize="off"',
    'spellcheck="false"',
    o.required ? 'required' : '',
    hints.length ? `aria-describedby="${id}-hint"` : '',
    !o.secret && !o.multiline && o.value !== undefined ? `value="${escapeHtml(o.value)}"` : '',
  ].filter(Boolean);
  const control = o.multiline
    ? `<textarea ${attrs.join(' ')}>${!o.secret && o.value !== undefined ? escapeHtml(o.value) : ''}</textarea>`
    : `<input ${attrs.join(' ')}>`;
  return `<div class="input"><label for="${id}">${escapeHtml(o.label)}</label>${hint}${control}</div>`;
}

/** Inputs for the params the user supplies, filled with what they typed before or the defaults. */
export function paramsHtml(params: readonly ParamView[], values: Readonly<Record<string, string>>): string {
  return params
    .map((p) =>
      inputHtml({
        input: paramInput(p.name),
        label: humanName(p.name),
        description: p.description,
        pattern: p.pattern,
        required: p.default === undefined,
        secret: false,
        value: values[p.name] ?? p.default,
      }),
    )
    .join('');
}

/** Inputs for a scheme's fields; a non-secret value typed before comes back, a secret never does. */
export function fieldsHtml(fields: readonly FieldView[], values: Readonly<Record<string, string>>): string {
  return fields
    .map((f) =>
      inputHtml({
        input: fieldInput(f.name),
        label: humanName(f.name),
        description: f.description,
        pattern: f.secret ? undefined : f.pattern,
        docsUrl: f.docsUrl,
        required: !f.optional,
        secret: f.secret,
        multiline: f.multiline,
        value: values[f.name],
      }),
    )
    .join('');
}
