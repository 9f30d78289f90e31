import { fetch, Response } from 'undici';

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

  /** A request, then every redirect and refresh (as GET), like a browser. */
  async follow(url: string, init: Parameters<Browser['request']>[1] = {}): Promise<Response> {
    return this.settle(await this.request(url, init), url);
  }

  /**
   * Follows a response's redirects and `<meta http-equiv="refresh">` until an answer that is
   * neither. A page it had to read comes back as a fresh Response with the same status and headers.
   */
  async settle(first: Response, url: string): Promise<Response> {
    let r = first;
    for (let hops = 0; hops < 10; hops++) {
      let next: string | undefined;
      if (r.status >= 300 && r.status < 400 && r.headers.has('location')) {
        next = r.headers.get('location')!;
        await r.body?.cancel();
      } else if (/text\/html/.test(r.headers.get('content-type') ?? '')) {
        const text = await r.text();
        next = refreshTarget(text);
        if (next === undefined) return new Response(text, { status: r.status, headers: r.headers });
      } else {
        return r;
      }
      url = new URL(next, url).href;
      r = await this.request(url);
    }
    return r;
  }
}

const UNESCAPE: Record<string, string> = { '&amp;': '&', '&lt;': '<', '&gt;': '>', '&quot;': '"', '&#39;': "'" };
const unescape = (s: string) => s.replace(/&(amp|lt|gt|quot|#39);/g, (e) => UNESCAPE[e]!);

/** Where a page's `<meta http-equiv="refresh">` sends the browser, if it has one. */
export function refreshTarget(html: string): string | undefined {
  const m = /<meta http-equiv="refresh" content="0; url=([^"]*)">/.exec(html);
  return m ? unescape(m[1]!) : undefined;
}

/** The connect page's form: where it posts and its hidden fields. */
export function connectForm(html: string): { action: string; fields: Record<string, string> } {
  const action = /<form method="post" action="([^"]*)">/.exec(html)?.[1];
  if (action === undefined) throw new Error(`no connect form in: ${html.slice(0, 300)}`);
  const fields: Record<string, string> = {};
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) fields[m[1]!] = unescape(m[2]!);
  return { action: unescape(action), fields };
}

/** Opens the connect page and presses its button; answers the button's response, unread. */
export async function pressConnect(browser: Browser, link: string): Promise<Response> {
  const page = await browser.request(link);
  if (page.status !== 200) return page;
  const { action, fields } = connectForm(await page.text());
  return browser.request(action, { form: fields });
}

/** Opens the connect page and presses its button: the provider's authorize URL it moves on to. */
export async function authorizeUrlOf(browser: Browser, link: string): Promise<string> {
  const r = await pressConnect(browser, link);
  const text = await r.text();
  const target = r.status === 200 ? refreshTarget(text) : undefined;
  if (target === undefined) throw new Error(`connect button: ${r.status} ${text.slice(0, 300)}`);
  return target;
}

/**
 * The whole flow as a user does it: open the link, press the button, then the provider and
 * the callback. Answers the last response; `browser.url` says where it ended.
 */
export async function connectInBrowser(link: string, browser = new Browser()): Promise<Response> {
  const page = await browser.request(link);
  if (page.status !== 200) return page;
  const { action, fields } = connectForm(await page.text());
  return browser.follow(action, { form: fields });
}

/** Up to the callback URL, without calling it: for tests that take the callback elsewhere. */
export async function callbackUrlOf(link: string, browser = new Browser()): Promise<string> {
  const atProvider = await browser.request(await authorizeUrlOf(browser, link));
  return atProvider.headers.get('location')!;
}
