import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { configDir, startProxy } from '../support/servers.js';

/**
 * display.logo_file served by credproxy (src/ui/logo.ts): the connect page links it on its own
 * origin (img-src 'self'), by a hashed URL cached as immutable, with the file's content type;
 * an SVG gets a CSP that runs no script. Real HTTP against a running proxy.
 */

const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64');
const SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><script>alert(1)</script><rect width="8" height="8"/></svg>';

t.test('the connect page shows the logo from credproxy; the image is served once per content, immutable', async (t) => {
  const dir = configDir('store: memory\n', {
    raster: 'hosts: [raster.example]\nauth: { type: api_key }\ndisplay: { name: Raster, logo_file: raster.png }\n',
    vector: 'hosts: [vector.example]\nauth: { type: api_key }\ndisplay: { name: Vector, logo_file: logos/vector.svg }\n',
    plain: 'hosts: [plain.example]\nauth: { type: api_key }\n',
  });
  writeFileSync(join(dir, 'raster.png'), PNG);
  mkdirSync(join(dir, 'logos'));
  writeFileSync(join(dir, 'logos', 'vector.svg'), SVG);
  const p = await startProxy(dir);
  t.teardown(() => p.close());

  const page = await fetch(await p.connectLink('alice', 'raster'));
  const html = await page.text();
  const src = /<img class="logo" src="([^"]+)" alt="Raster logo"/.exec(html)?.[1];
  t.match(src, /^\/connect\/raster\/logo\/[0-9a-f]{16}$/, 'a path on credproxy itself, by hash');
  t.match(page.headers.get('content-security-policy'), /; img-src 'self'; /, "img-src 'self', nothing else");

  const png = await fetch(`${p.url}${src}`);
  t.equal(png.status, 200);
  t.equal(png.headers.get('content-type'), 'image/png');
  t.equal(png.headers.get('cache-control'), 'public, max-age=31536000, immutable');
  t.equal(png.headers.get('x-content-type-options'), 'nosniff');
  t.ok(Buffer.from(await png.arrayBuffer()).equals(PNG), 'the file as it is');
  t.equal((await fetch(`${p.url}${src}`, { method: 'HEAD' })).headers.get('content-length'), String(PNG.length));

  const vectorSrc = /<img class="logo" src="([^"]+)"/.exec(await (await fetch(await p.connectLink('alice', 'vector'))).text())?.[1];
  const svg = await fetch(`${p.url}${vectorSrc}`);
  t.equal(svg.headers.get('content-type'), 'image/svg+xml');
  t.match(svg.headers.get('content-security-policy'), /^default-src 'none'; style-src 'unsafe-inline'; sandbox$/, 'an SVG opened on its own runs no script');
  t.equal(await svg.text(), SVG);

  t.equal((await fetch(`${p.url}/connect/raster/logo/0000000000000000`)).status, 404, 'another hash (a file since replaced)');
  t.equal((await fetch(`${p.url}/connect/plain/logo/0000000000000000`)).status, 404, 'an integration without a logo file');
  t.equal((await fetch(`${p.url}/connect/nothing/logo/0000000000000000`)).status, 404);
  t.notMatch(await (await fetch(await p.connectLink('alice', 'plain'))).text(), '<img', 'no logo, no image');
});
