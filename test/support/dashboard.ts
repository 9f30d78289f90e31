import { ADMIN, type TestProxy } from './servers.js';

/** The dashboard's forms over plain HTTP (test/ui/dashboard/): a browser without the browser. */

const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();

export async function post(p: TestProxy, path: string, fields: Record<string, string>, cookie?: string, headers: Record<string, string> = {}) {
  return fetch(`${p.url}${path}`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(cookie ? { cookie } : {}), ...headers },
    body: form(fields),
  });
}

export const get = (p: TestProxy, path: string, cookie?: string) => fetch(`${p.url}${path}`, { redirect: 'manual', headers: cookie ? { cookie } : {} });

/** Signs in; the cookie to send back and the page's CSRF token. */
export async function signIn(p: TestProxy): Promise<{ cookie: string; csrf: string }> {
  const r = await post(p, '/ui/sign-in', { token: ADMIN });
  if (r.status !== 303) throw new Error(`sign-in: ${r.status}`);
  const cookie = r.headers.get('set-cookie')!.split(';')[0]!;
  const page = await (await get(p, '/ui/tokens', cookie)).text();
  const csrf = /name="csrf" value="([^"]+)"/.exec(page)![1]!;
  return { cookie, csrf };
}

