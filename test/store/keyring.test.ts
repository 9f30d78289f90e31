import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { encrypt } from '../../src/store/crypto.js';
import { DEFAULT_KEY_ID, Keyring, keyIdOf, keyringFromEnv, parseKeyring, UnreadableError } from '../../src/store/keyring.js';

const k1 = Buffer.alloc(32, 1);
const k2 = Buffer.alloc(32, 2);
const b64 = (k: Buffer) => k.toString('base64');

t.test('id:key pairs, newest last, commas or newlines, # comments; the newest seals', async (t) => {
  const ring = parseKeyring(`old:${b64(k1)}, 2026-12:${'02'.repeat(32)}`, 'test');
  t.same(ring.ids, ['old', '2026-12']);
  t.equal(ring.newest.id, '2026-12');
  t.same(ring.newest.key, k2, 'hex keys too');
  const file = parseKeyring(`# rotated 2026-12\nold:${b64(k1)}\n\nnew:${b64(k2)}   # current\n`, 'file');
  t.same(file.ids, ['old', 'new']);
  const blob = file.seal('secret', 'aad');
  t.equal(keyIdOf(blob), 'new');
  t.match(blob, /^v2\.new\./, 'the blob names its key');
  t.equal(file.open(blob, 'aad'), 'secret');
  t.equal(parseKeyring(`new:${b64(k2)}`, 'x').open(blob, 'aad'), 'secret', 'any ring holding that key opens it');
  t.throws(() => parseKeyring(`old:${b64(k1)}`, 'x').open(blob, 'aad'), UnreadableError, 'a ring without it cannot');
  t.throws(() => parseKeyring(`new:${b64(k1)}`, 'x').open(blob, 'aad'), { message: /sealed with key "new", but that key does not open them/ });
  t.throws(() => file.open(blob, 'other aad'), UnreadableError, 'the AAD stays bound');
});

t.test('records sealed before key ids (v1) are key "default"; a ring whose newest is default still writes v1', async (t) => {
  const legacy = encrypt(k1, 'secret', 'aad');
  t.equal(keyIdOf(legacy), DEFAULT_KEY_ID);
  t.equal(Keyring.single(k1).open(legacy, 'aad'), 'secret');
  const rotating = parseKeyring(`default:${b64(k1)},next:${b64(k2)}`, 'x');
  t.equal(rotating.open(legacy, 'aad'), 'secret', 'the old key, named default, opens what it sealed');
  t.match(Keyring.single(k1).seal('s', 'aad'), /^v1\./, 'older credproxy versions keep reading what a single-key instance writes');
  t.match(parseKeyring(`next:${b64(k2)},default:${b64(k1)}`, 'x').seal('s', 'aad'), /^v1\./);
  t.throws(() => parseKeyring(`next:${b64(k2)}`, 'x').open(legacy, 'aad'), { message: /key "default", which is not in the keyring/ });
});

t.test('bad keyrings are refused with the reason, never the key', async (t) => {
  const secret = b64(k1);
  for (const [text, why] of [
    ['', /holds no key/],
    [secret, /expected id:key pairs/],
    [`a.b:${secret}`, /expected id:key pairs/],
    [`a:${secret.slice(4)}`, /key of "a" must be 32 bytes/],
    [`a:${secret},a:${b64(k2)}`, /"a" is given twice/],
    [`a:${secret},b:${secret}`, /also given under another id/],
  ] as const) {
    const err = t.throws(() => parseKeyring(text, 'CREDPROXY_SECRET_KEYS'), why) as Error;
    t.notMatch(err.message, secret.slice(4, 20), 'the key is not echoed');
  }
});

t.test('from the environment: KEYS, KEYS_FILE, or the single KEY as "default"; only one of them', async (t) => {
  t.equal(keyringFromEnv({}), undefined);
  t.same(keyringFromEnv({ CREDPROXY_SECRET_KEY: b64(k1) })!.ids, ['default']);
  t.same(keyringFromEnv({ CREDPROXY_SECRET_KEYS: `a:${b64(k1)},b:${b64(k2)}` })!.ids, ['a', 'b']);
  const dir = mkdtempSync(join(tmpdir(), 'credproxy-keys-'));
  writeFileSync(join(dir, 'keys'), `a:${b64(k1)}\nb:${b64(k2)}\n`, { mode: 0o600 });
  t.same(keyringFromEnv({ CREDPROXY_SECRET_KEYS_FILE: join(dir, 'keys') })!.ids, ['a', 'b']);
  t.throws(() => keyringFromEnv({ CREDPROXY_SECRET_KEYS_FILE: join(dir, 'missing') }), { message: /cannot read .*missing \(ENOENT\)/ });
  t.throws(() => keyringFromEnv({ CREDPROXY_SECRET_KEY: b64(k1), CREDPROXY_SECRET_KEYS: `a:${b64(k1)}` }), { message: /set only one/ });
  t.throws(() => keyringFromEnv({ CREDPROXY_SECRET_KEY: 'short' }), { message: /must be 32 bytes/ });
});

t.test('the start-up sample is bounded in time: a keyspace that yields nothing does not hold the start', async (t) => {
  const { sampleKeyring } = await import('../../src/store/key-check.js');
  const backend = {
    keyv: undefined as never,
    keys: async function* () {
      await new Promise(() => undefined); // a SCAN walking other applications' keys
      yield 'never';
    },
  };
  t.same(await sampleKeyring(backend, Keyring.single(k1), 20, 50), { sampled: 0, opened: 0, unreadable: {} });
});
