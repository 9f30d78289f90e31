import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { LOGO_MAX_BYTES, readLogo, type LogoFile } from '../../src/config/logo.js';
import { configDir } from '../support/servers.js';
import { loadConfig, problemsOf } from '../support/config.js';

/** display.logo_file: read and checked when the config loads, the path relative to the config folder. */

const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64');
const JPEG = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 16, 0x4a, 0x46, 0x49, 0x46, 0]);
const WEBP = Buffer.concat([Buffer.from('RIFF'), Buffer.from([26, 0, 0, 0]), Buffer.from('WEBPVP8L'), Buffer.alloc(14)]);
const SVG = Buffer.from('<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><rect width="8" height="8"/></svg>\n');

const integration = (display: string) => `hosts: [logo.example]\nauth: { type: bearer }\ndisplay: ${display}\n`;

t.test('each image type by extension and signature; the hash follows the content', async (t) => {
  const dir = configDir('store: memory\n');
  const files: Array<[string, Buffer, LogoFile['content_type']]> = [
    ['a.png', PNG, 'image/png'],
    ['b.JPG', JPEG, 'image/jpeg'],
    ['c.jpeg', JPEG, 'image/jpeg'],
    ['d.webp', WEBP, 'image/webp'],
    ['e.svg', SVG, 'image/svg+xml'],
  ];
  for (const [name, bytes, type] of files) {
    writeFileSync(join(dir, name), bytes);
    const logo = readLogo(join(dir, name));
    t.match(logo, { content_type: type, hash: /^[0-9a-f]{16}$/ }, name);
    t.ok(typeof logo !== 'string' && logo.bytes.equals(bytes));
  }
  const hashOf = (l: LogoFile | string) => (typeof l === 'string' ? l : l.hash);
  t.not(hashOf(readLogo(join(dir, 'b.JPG'))), hashOf(readLogo(join(dir, 'a.png'))));
  t.equal(hashOf(readLogo(join(dir, 'b.JPG'))), hashOf(readLogo(join(dir, 'c.jpeg'))), 'same bytes, same hash');
});

t.test('what is wrong is said with the file it is about', async (t) => {
  const dir = configDir('store: memory\n');
  const at = (n: string) => join(dir, n);
  writeFileSync(at('big.png'), Buffer.concat([PNG, Buffer.alloc(LOGO_MAX_BYTES)]));
  writeFileSync(at('fake.png'), SVG);
  writeFileSync(at('fake.svg'), PNG);
  writeFileSync(at('empty.webp'), '');
  writeFileSync(at('logo.gif'), 'GIF89a');
  mkdirSync(at('folder.png'));
  t.equal(readLogo(at('missing.png')), `${at('missing.png')} does not exist (a relative logo_file is read from the config folder)`);
  t.equal(readLogo(at('big.png')), `${at('big.png')} is ${PNG.length + LOGO_MAX_BYTES} bytes; a logo may be at most 262144 bytes (256 KiB)`);
  t.equal(readLogo(at('fake.png')), `${at('fake.png')} is not a PNG file, as its extension says`);
  t.equal(readLogo(at('fake.svg')), `${at('fake.svg')} is not a SVG file, as its extension says`);
  t.equal(readLogo(at('empty.webp')), `${at('empty.webp')} is empty`);
  t.equal(readLogo(at('logo.gif')), `${at('logo.gif')}: a logo must be a .png, .svg, .jpg/.jpeg or .webp file`);
  t.equal(readLogo(at('folder.png')), `${at('folder.png')} is not a file`);
});

t.test('in an integration: relative to the config folder, errors at the line of logo_file', async (t) => {
  const dir = configDir('store: memory\n', {
    good: integration('{ name: Good, logo_file: images/good.png }'),
  });
  mkdirSync(join(dir, 'images'));
  writeFileSync(join(dir, 'images', 'good.png'), PNG);
  const logo = loadConfig(dir).integrations.get('good')!.display!.logo!;
  t.equal(logo.file, join(dir, 'images', 'good.png'), 'read from the config folder, not the integrations folder or the working directory');
  t.equal(logo.content_type, 'image/png');

  const bad = configDir('store: memory\n', {
    gone: integration('\n  name: Gone\n  logo_file: ./nowhere/logo.svg'),
    both: integration('{ logo_url: "https://cdn.example/l.png", logo_file: l.png }'),
  });
  writeFileSync(join(bad, 'l.png'), PNG);
  t.same(problemsOf(bad), [
    'integrations/both.yaml:3: display: give logo_url or logo_file, not both',
    `integrations/gone.yaml:5: display.logo_file: ${join(bad, 'nowhere', 'logo.svg')} does not exist (a relative logo_file is read from the config folder)`,
  ]);
});
