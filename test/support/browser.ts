import { fetch, type Response } from 'undici';

/**
 * A small browser for connect flows: follows redirects by hand and keeps cookies per host
 * (like a browser, not per port: 127.0.0.1's cookies go to every port of 127.0.0.1). Enough
 * to show that a flow works in the browser that started it and fails in another one.
 */
export class Browser {
  private readonly jar = new Map<string, Map<string, string>>();
  /** the URL of the last response */
  url = '';
  /** every URL requested, in order */
  readonly visited: string[] = [];

  cookie(host: string, name: string): string | undefined {
    return this.jar.get(host)?.get(name);
  }

  setCookie(host: string, name: string, value: string): void {
    const m = this.jar.get(host) ?? new Map<string, string>();
    m.set(name, value);
    this.jar.set(host, m);
  }

  cookies(host: string): Map<string, string> {
    return new Map(this.jar.get(host) ?? []);
  }

  /** One request, no redirect followed; Set-Cookie answers go into the jar. */
  async request(url: string, init: { method?: string; form?: Record<string, string>; headers?: Record<string, string> } = {}): Promise<Response> {
    const u = new URL(url);
    const headers: Record<string, string> = { accept: 'text/html', ...init.headers };
    const jar = this.jar.get(u.hostname);
    if (jar?.size) headers.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    let body: string | undefined;
    if (init.form) {
      body = new URLSearchParams(init.form).toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
    }
    this.visited.push(url);
    const r = await fetch(url, { method: init.method ?? (body ? 'POST' : 'GET'), headers, body, redirect: 'manual' });
    for (const line of r.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair!.indexOf('=');
      if (eq > 0) this.setCookie(u.hostname, pair!.slice(0, eq).trim(), pair!.slice(eq + 1).trim());
    }
    this.url = url;
    return r;
  }

  /** A request, then every redirect (as GET) until an answer that is not one. */
  async follow(url: string, init: Parameters<Browser['request']>[1] = {}): Promise<Response> {
    let r = await this.request(url, init);
    for (let hops = 0; hops < 10 && r.status >= 300 && r.status < 400 && r.headers.has('location'); hops++) {
      await r.body?.cancel();
      r = await this.request(new URL(r.headers.get('location')!, url).href);
    }
    return r;
  }
}

const UNESCAPE: Record<string, string> = { '&amp;': '&', '&lt;': '<', '&gt;': '>', '&quot;': '"', '&#39;': "'" };
const unescape = (s: string) => s.replace(/&(amp|lt|gt|quot|#39);/g, (e) => UNESCAPE[e]!);

/** The connect page's form: where it posts and its hidden fields. */
export function connectForm(html: string): { action: string; fields: Record<string, string> } {
  const action = /<form method="post" action="([^"]*)">/.exec(html)?.[1];
  if (action === undefined) throw new Error(`no connect form in: ${html.slice(0, 300)}`);
  const fields: Record<string, string> = {};
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) fields[m[1]!] = unescape(m[2]!);
  return { action: unescape(action), fields };
}

/** Opens the connect page and presses its button, without following the POST's redirect. */
export async function pressConnect(browser: Browser, link: string): Promise<Response> {
  const page = await browser.request(link);
  if (page.status !== 200) return page;
  const { action, fields } = connectForm(await page.text());
  return browser.request(action, { form: fields });
}

/**
 * The whole flow as a user does it: open the link, press the button, then the provider and
 * the callback. Answers the last response; `browser.url` says where it ended.
 */
export async function connectInBrowser(link: string, browser = new Browser()): Promise<Response> {
  const posted = await pressConnect(browser, link);
  if (posted.status !== 303) return posted;
  await posted.body?.cancel();
  return browser.follow(new URL(posted.headers.get('location')!, link).href);
}

/** Up to the callback URL, without calling it: for tests that take the callback elsewhere. */
export async function callbackUrlOf(link: string, browser = new Browser()): Promise<string> {
  const posted = await pressConnect(browser, link);
  if (posted.status !== 303) throw new Error(`connect button: ${posted.status} ${await posted.text()}`);
  const atProvider = await browser.request(posted.headers.get('location')!);
  return atProvider.headers.get('location')!;
}
