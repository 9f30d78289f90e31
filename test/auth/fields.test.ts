import t from 'tap';
import { acceptFields, checkValue, fieldInfos } from '../../src/auth/fields.js';

const fields = fieldInfos([{ name: 'api_key' }, { name: 'region', secret: false, optional: true, pattern: '^[a-z]+-[0-9]$' }], []);

t.test('fieldInfos: strings are required secrets; objects default to secret and required', async (t) => {
  const fallback = [{ name: 'token', secret: true, optional: false }];
  t.equal(fieldInfos(undefined, fallback), fallback, 'nothing configured: the scheme default');
  t.same(fieldInfos(['a'], fallback), [{ name: 'a', secret: true, optional: false }]);
  t.match(fields[0], { name: 'api_key', secret: true, optional: false, pattern: undefined });
  t.match(fields[1], { name: 'region', secret: false, optional: true });
  t.ok(fields[1]!.pattern instanceof RegExp);
});

t.test('acceptFields: exactly the declared fields, optional ones may be absent', async (t) => {
  t.same(acceptFields(fields, { api_key: 'k' }), { api_key: 'k' });
  t.same(acceptFields(fields, { api_key: 'k', region: 'eu-1' }), { api_key: 'k', region: 'eu-1' });
  t.same(acceptFields(fields, { api_key: 'k', region: null }), { api_key: 'k' });
  t.throws(() => acceptFields(fields, {}), { code: 'bad_request', message: 'credentials.api_key is required' });
  t.throws(() => acceptFields(fields, { api_key: 'k', extra: 'x' }), { code: 'bad_request', message: /unknown field extra; expected api_key, region/ });
});

t.test('checkValue: strings only, not empty, no control characters, the pattern; the value is never echoed', async (t) => {
  const secret = 'sk-live-SECRET';
  t.throws(() => checkValue('api_key', 5), { code: 'bad_request', message: /must be a string/ });
  t.throws(() => checkValue('api_key', ''), { message: /must not be empty/ });
  for (const bad of [`${secret}\r\nX-Evil: 1`, `${secret}\u0000`, `${secret}\u007f`]) {
    const err = t.throws(() => checkValue('api_key', bad), { message: /control characters/ }) as unknown as Error;
    t.notMatch(err.message, secret);
  }
  const err = t.throws(() => checkValue('region', secret, /^[a-z]+-[0-9]$/), { message: /does not match the pattern/ }) as unknown as Error;
  t.notMatch(err.message, secret);
  t.equal(checkValue('region', 'eu-1', /^[a-z]+-[0-9]$/), 'eu-1');
});
