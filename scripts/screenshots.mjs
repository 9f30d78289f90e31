// Regenerates the screenshots in docs/images from the browser tests (real Chromium, the same
// pages the tests check), so the README and docs/dashboard.md show what the code serves today.
// Usage: npm run screenshots   (needs /usr/bin/chromium, like the tests)
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const TESTS = ['test/ui/connect-page.browser.test.ts', 'test/ui/connect-fields.browser.test.ts', 'test/ui/dashboard/dashboard.browser.test.ts'];
// what the tests write → what the docs show
const KEEP = {
  'connect-choose-phone.png': 'connect-page-phone.png',
  'connect-page-desktop.png': 'connect-page-oauth.png',
  'dash-entity-desktop.png': 'dashboard-entity.png',
  'dash-all-entities-desktop.png': 'dashboard-all-entities.png',
  'dash-connection-phone.png': 'dashboard-connection-phone.png',
};

const dir = mkdtempSync(join(tmpdir(), 'credproxy-screens-'));
try {
  const r = spawnSync('npx', ['tap', '--disable-coverage', ...TESTS], { stdio: 'inherit', env: { ...process.env, CREDPROXY_SCREENSHOTS: dir } });
  if (r.status !== 0) {
    console.error('the browser tests failed: no screenshot was replaced');
    process.exit(1);
  }
  for (const [from, to] of Object.entries(KEEP)) {
    copyFileSync(join(dir, from), join('docs', 'images', to));
    console.log(`docs/images/${to}`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
