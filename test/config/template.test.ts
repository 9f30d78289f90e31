import t from 'tap';
import { compileTemplate, MissingValueError } from '../../src/config/template.js';

t.test('renders names between literals, spaces inside braces allowed', async (t) => {
  const tpl = compileTemplate('Token {{ token }} for {{user}}!');
  t.same(tpl.names, ['token', 'user']);
  t.equal(tpl.render({ token: 't1', user: 'alice' }), 'Token t1 for alice!');
  t.equal(tpl.source, 'Token {{ token }} for {{user}}!');
});

t.test('a missing value is a MissingValueError naming it, never an empty credential', async (t) => {
  const tpl = compileTemplate('Bearer {{token}}');
  let err: unknown;
  try {
    tpl.render({});
  } catch (e) {
    err = e;
  }
  t.ok(err instanceof MissingValueError, 'the caller can tell it from other errors');
  t.throws(() => tpl.render({ token: undefined }), { missing: 'token', message: 'no value for {{token}}' });
  t.equal(tpl.render({ token: '' }), 'Bearer ', 'an empty string is a value (the caller checks values when they are stored)');
});

t.test('no placeholders: the source as is; malformed braces are literal text', async (t) => {
  t.equal(compileTemplate('static').render({}), 'static');
  const odd = compileTemplate('{{1bad}} {token} {{ok}}');
  t.same(odd.names, ['ok']);
  t.equal(odd.render({ ok: 'y' }), '{{1bad}} {token} y');
});

t.test('a value that looks like a placeholder is not expanded again', async (t) => {
  t.equal(compileTemplate('{{a}}-{{b}}').render({ a: '{{b}}', b: 'B' }), '{{b}}-B');
});
