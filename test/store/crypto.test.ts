import t from 'tap';
import { decrypt, encrypt, parseKey } from '../../src/store/crypto.js';

const key = Buffer.alloc(32, 1);

t.test('AES-256-GCM sealing: fresh IV, AAD bound, full tag enforced', async (t) => {
  const a = encrypt(key, 'secret', 'alice\nsvc');
  const b = encrypt(key, 'secret', 'alice\nsvc');
  t.not(a, b, 'a fresh IV per write');
  t.equal(Buffer.from(a.split('.')[1]!, 'base64').length, 12);
  t.equal(decrypt(key, a, 'alice\nsvc'), 'secret');
  t.throws(() => decrypt(key, a, 'bob\nsvc'), 'another entity cannot open it');
  t.throws(() => decrypt(Buffer.alloc(32, 2), a, 'alice\nsvc'), 'another key cannot open it');
  const [v, iv, tag, ct] = a.split('.');
  const short = [v, iv, Buffer.from(tag!, 'base64').subarray(0, 12).toString('base64'), ct].join('.');
  t.throws(() => decrypt(key, short, 'alice\nsvc'), { message: /truncated authentication tag/ });
  t.throws(() => decrypt(key, `v9.${iv}.${tag}.${ct}`, 'alice\nsvc'), { message: /not in a format/ });
  t.throws(() => decrypt(key, 'v1.x', 'alice\nsvc'), { message: /not in a format/ });
  const flipped = Buffer.from(ct!, 'base64');
  flipped[0]! ^= 1;
  t.throws(() => decrypt(key, [v, iv, tag, flipped.toString('base64')].join('.'), 'alice\nsvc'), 'a changed ciphertext fails');
});

t.test('parseKey', async (t) => {
  t.same(parseKey('01'.repeat(32)), Buffer.alloc(32, 1));
  t.same(parseKey(` ${Buffer.alloc(32, 3).toString('base64')}\n`), Buffer.alloc(32, 3));
  t.same(parseKey(Buffer.alloc(32, 3).toString('base64url')), Buffer.alloc(32, 3));
  t.equal(parseKey(Buffer.alloc(16).toString('base64')), undefined, '16 bytes is too short');
  t.equal(parseKey('not a key!'), undefined);
});
