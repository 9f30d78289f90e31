import t from 'tap';
import { apiKey, ApiKeyScheme } from '../../src/auth/api-key.js';
import { basic as basicModule, BasicScheme } from '../../src/auth/basic.js';
import { bearer as bearerModule, BearerScheme } from '../../src/auth/bearer.js';
import { oauth2, OAuth2Scheme } from '../../src/auth/oauth2.js';
import { AUTH_TYPES, SCHEMES, withSchemes } from '../../src/auth/registry.js';
import { compileTemplate, MissingValueError } from '../../src/config/template.js';
import { CredproxyError } from '../../src/errors.js';
import { definitionOf } from '../support/schemes.js';

const badRequest = (fn: () => unknown, message: RegExp) => {
  try {
    fn();
  } catch (err) {
    return err instanceof CredproxyError && err.code === 'bad_request' && message.test(err.message) ? true : `${err}`;
  }
  return 'did not throw';
};

t.test('the registry is one table keyed by type; AUTH_TYPES and further schemes come from it', async (t) => {
  for (const type of ['api_key', 'basic', 'bearer', 'oauth2']) t.ok(type in SCHEMES, `${type} is registered`);
  for (const [type, module] of Object.entries(SCHEMES)) t.equal(module.type, type, `${type} is filed under its own type`);
  t.same(AUTH_TYPES, Object.keys(SCHEMES));
  t.same(AUTH_TYPES, ['oauth2', 'oauth2_client_credentials', 'api_key', 'bearer', 'basic', 'jwt', 'jwt_bearer', 'oauth1', 'aws_sigv4'], 'the order DESIGN.md lists them');
  t.throws(() => withSchemes(SCHEMES, apiKey), /auth type "api_key" is already registered/, 'a built-in type cannot be replaced by accident');
  t.equal(SCHEMES.nonesuch, undefined);
});

t.test('api_key: declared fields, patterns, the default inject follows the field name', async (t) => {
  const plainDef = definitionOf(apiKey, { type: 'api_key' });
  const plain = new ApiKeyScheme(plainDef);
  t.same(plainDef.traits.defaultInject, { headers: { Authorization: 'Bearer {{api_key}}' } });
  t.same(plain.accept({ api_key: 'k' }).credentials, { api_key: 'k' });
  const namedDef = definitionOf(apiKey, { type: 'api_key', fields: [{ name: 'key', pattern: '^sk-', description: 'd' }, { name: 'org', secret: false, optional: true }] });
  const named = new ApiKeyScheme(namedDef);
  t.same(namedDef.traits.defaultInject, { headers: { Authorization: 'Bearer {{key}}' } });
  t.same(named.fields.map((f) => [f.name, f.secret, f.optional]), [['key', true, false], ['org', false, true]]);
  t.same(named.accept({ key: 'sk-1' }).credentials, { key: 'sk-1' }, 'an optional field may be absent');
  t.same(named.accept({ key: 'sk-1', org: 'o' }).credentials, { key: 'sk-1', org: 'o' });
  t.equal(badRequest(() => named.accept({ key: 'pk-1' }), /credentials\.key does not match the pattern \^sk-/), true);
  t.equal(badRequest(() => named.accept({ key: 'sk-1\r\nX-Evil: 1' }), /control characters/), true, 'CR/LF refused');
  t.equal(badRequest(() => named.accept({ key: 'sk-\u0000' }), /control characters/), true);
  t.equal(badRequest(() => named.accept({}), /credentials\.key is required/), true);
  t.equal(badRequest(() => named.accept({ key: 'sk-1', extra: 'x' }), /unknown field extra; expected key, org/), true);
  t.equal(badRequest(() => named.accept({ key: 42 }), /must be a string/), true);
  t.equal(badRequest(() => named.accept({ key: '' }), /must not be empty/), true);
  const msg = (() => {
    try {
      named.accept({ key: 'pk-secret-value' });
    } catch (err) {
      return (err as Error).message;
    }
    return '';
  })();
  t.notMatch(msg, /pk-secret-value/, 'an error never repeats the value');
  t.same(new ApiKeyScheme(definitionOf(apiKey, { type: 'api_key', fields: ['token'] })).fields, [{ name: 'token', secret: true, optional: false }]);
});

t.test('bearer and basic', async (t) => {
  const bearer = new BearerScheme(definitionOf(bearerModule, { type: 'bearer' }));
  t.same(bearer.accept({ token: 't' }).credentials, { token: 't' });
  t.same(bearer.values({ entity: 'e', integration: undefined as never, connection: undefined }), {});
  const basic = new BasicScheme(definitionOf(basicModule, { type: 'basic' }));
  t.same(basic.accept({ username: 'u', password: 'p:w' }).credentials, { username: 'u', password: 'p:w' });
  t.equal(badRequest(() => basic.accept({ username: 'u:x', password: 'p' }), /must not contain ":"/), true);
  t.equal(badRequest(() => basic.accept({ username: 'u', password: 'p\n' }), /control characters/), true);
  t.same(basic.values({ entity: 'e', integration: undefined as never, connection: undefined }), { basic_auth: Buffer.from(':').toString('base64') });
});

t.test('oauth2 token sets', async (t) => {
  const s = new OAuth2Scheme(definitionOf(oauth2, { type: 'oauth2', authorize_url: 'https://a.example/authorize', token_url: 'https://a.example/token', client_id: 'c' }));
  const now = 1_700_000_000_000;
  t.same(s.accept({ access_token: 'a' }, now), { credentials: { access_token: 'a' } });
  t.same(s.accept({ access_token: 'a', refresh_token: 'r', expires_in: 60, scope: ['x', 'y'] }, now), {
    credentials: { access_token: 'a', refresh_token: 'r' },
    expires_at: now + 60_000,
    scopes: ['x', 'y'],
  });
  t.equal(s.accept({ access_token: 'a', expires_at: 1_800_000_000 }, now).expires_at, 1_800_000_000_000, 'unix seconds');
  t.equal(s.accept({ access_token: 'a', expires_at: '2030-01-01T00:00:00Z' }, now).expires_at, Date.parse('2030-01-01T00:00:00Z'));
  t.same(s.accept({ access_token: 'a', scope: 'a,b c', refresh_token: null }, now).scopes, ['a', 'b', 'c']);
  t.equal(badRequest(() => s.accept({}, now), /access_token must be a string/), true);
  t.equal(badRequest(() => s.accept({ access_token: 'a', id_token: 'x' }, now), /unknown field id_token/), true);
  t.equal(badRequest(() => s.accept({ access_token: 'a', expires_at: 1, expires_in: 1 }, now), /not both/), true);
  t.equal(badRequest(() => s.accept({ access_token: 'a', expires_in: -1 }, now), /positive number/), true);
  t.equal(badRequest(() => s.accept({ access_token: 'a', expires_at: 'soon' }, now), /ISO 8601/), true);
  t.equal(badRequest(() => s.accept({ access_token: 'a', scope: [1] }, now), /scope must be/), true);
  t.equal(badRequest(() => s.accept({ access_token: 'a\nb' }, now), /control characters/), true);
  t.same(await s.values({ entity: 'e', integration: undefined as never, connection: undefined }), {});
});

t.test('templates', async (t) => {
  const tpl = compileTemplate('Bearer {{ token }} for {{entity}}!');
  t.same(tpl.names, ['token', 'entity']);
  t.equal(tpl.render({ token: 't', entity: 'e' }), 'Bearer t for e!');
  t.throws(() => tpl.render({ token: 't' }), { missing: 'entity', message: 'no value for {{entity}}' });
  t.ok((() => { try { tpl.render({}); } catch (e) { return e instanceof MissingValueError; } return false; })(), 'a MissingValueError');
  const plain = compileTemplate('static');
  t.same(plain.names, []);
  t.equal(plain.render({}), 'static');
  t.same(compileTemplate('{{1x}} {x}').names, [], 'not template names');
});
