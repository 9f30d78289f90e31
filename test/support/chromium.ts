import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { chromium, type Browser, type ConsoleMessage, type Locator, type Page } from 'playwright-core';

/**
 * A real Chromium for the browser-facing pages (Debian's package; playwright's own download
 * cannot reach the network here). Missing, it is a failure that says what to install, never a
 * skip: a skipped browser test would let the pages break unnoticed.
 * (test/support/browser.ts is the HTTP-level stand-in the other connect-flow tests use.)
 */
export const CHROMIUM_PATH = process.env.CREDPROXY_TEST_CHROMIUM ?? '/usr/bin/chromium';

/** Names that the browser resolves to 127.0.0.1, so a test can put servers on different sites. */
export const TEST_HOSTS = ['provider.test'];

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`${CHROMIUM_PATH} is missing: the browser tests need Chromium; install Debian's "chromium" package (apt-get install chromium) or set CREDPROXY_TEST_CHROMIUM`);
  }
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    // playwright gives every launch a fresh temporary profile (user data dir) and deletes it on close.
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--host-resolver-rules=${TEST_HOSTS.map((h) => `MAP ${h} 127.0.0.1`).join(', ')}`,
    ],
  });
}

/**
 * Everything a page says on the console (CSP violations land there, with or without
 * JavaScript) and every script error, for a test to assert there is none.
 */
export function watchConsole(page: Page): string[] {
  const said: string[] = [];
  page.on('console', (m: ConsoleMessage) => said.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => said.push(`pageerror: ${e.message}`));
  return said;
}

/** What the console shows that is not the expected "failed to load" line of an error status. */
export const problems = (said: string[]) => said.filter((s) => !/Failed to load resource: the server responded with a status of 4\d\d/.test(s));

// The tests compile without the DOM library; these are what runs inside the page.
declare const document: { documentElement: { scrollWidth: number; clientWidth: number } };
declare const getComputedStyle: (el: unknown) => Record<string, string>;

/** A computed style property of the first element the locator finds. */
export const computedStyle = (locator: Locator, property: string): Promise<string> =>
  locator.evaluate((el, p) => getComputedStyle(el)[p] ?? '', property);

/** True when the page is wider than its viewport (a phone would scroll sideways). */
export const overflowsSideways = (page: Page) => page.evaluate(() => document.documentElement.scrollWidth > document.documentElement.clientWidth);

export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

/**
 * One Chromium for a test file (launched before its tests, closed after them) and its
 * screenshots: each page at desktop and phone width, into a temporary folder, copied to
 * $CREDPROXY_SCREENSHOTS when set (npm run screenshots), with the check that nothing on the
 * page is wider than the screen. `prefix` starts every file name (`dash-`, `connect-`).
 */
export function chromiumForFile(root: Test, prefix: string): { browser(): Browser; screenshot(t: Test, page: Page, name: string): Promise<void> } {
  const shots = mkdtempSync(join(tmpdir(), 'credproxy-screens-'));
  const keep = process.env.CREDPROXY_SCREENSHOTS;
  if (keep) mkdirSync(keep, { recursive: true });
  let browser: Browser | undefined;
  root.before(async () => {
    browser = await launchChromium();
  });
  root.teardown(async () => {
    await browser?.close();
    rmSync(shots, { recursive: true, force: true });
  });
  return {
    browser: () => browser!,
    async screenshot(t, page, name) {
      for (const [width, size] of [['desktop', DESKTOP], ['phone', PHONE]] as const) {
        await page.setViewportSize(size);
        const file = join(shots, `${prefix}${name}-${width}.png`);
        await page.screenshot({ path: file, fullPage: true });
        if (keep) copyFileSync(file, join(keep, `${prefix}${name}-${width}.png`));
        t.notOk(await overflowsSideways(page), `${name}: nothing wider than a ${width} screen`);
      }
      await page.setViewportSize(DESKTOP);
    },
  };
}
