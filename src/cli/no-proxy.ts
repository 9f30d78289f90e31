/**
 * NO_PROXY for the command of `credproxy run` / `credproxy env`: a host listed there is reached
 * directly, with the command's placeholder and no credential, and credproxy never sees it. So
 * every entry that covers an integration's host is taken out, loopback ones included (a
 * development integration on 127.0.0.1 is the common case of that surprise).
 */

/** Integration host patterns (`api.x.com`, `127.0.0.1:8443`, `*.x.com`, `{{sub}}.x.com`) as host names, lower case. */
export function integrationHostnames(hosts: readonly string[]): string[] {
  return hosts.map((h) => {
    let name = h.trim().toLowerCase();
    // A host template is some subdomain: as a wildcard it is covered by the same entries.
    name = name.replace(/^\{\{[^}]*\}\}/, '*');
    if (name.startsWith('[')) return name.slice(1, name.indexOf(']'));
    const colon = name.lastIndexOf(':');
    return colon > 0 && name.indexOf(':') === colon ? name.slice(0, colon) : name;
  });
}

/** localhost, 127.x, ::1 (and their CIDR forms): one machine, whichever name an entry uses. */
const isLoopback = (h: string): boolean => /^(localhost|.+\.localhost|127(\.\d{1,3}){3}|::1|127(\.\d{1,3}){0,3}\/\d+|::1\/128)$/.test(h);

/** Does the NO_PROXY entry send `host` (maybe `*.suffix`) around the proxy, as curl, Python and undici read it? */
function covers(entry: string, host: string): boolean {
  let e = entry.trim().toLowerCase();
  if (e === '*') return true;
  if (e.startsWith('[')) e = e.slice(1, e.indexOf(']'));
  else if (e.indexOf(':') === e.lastIndexOf(':')) e = e.replace(/:\d+$/, '');
  e = e.replace(/^\*?\./, '');
  if (e === '') return false;
  // Java and axios send every loopback target direct when any loopback name is listed.
  if (isLoopback(host) && isLoopback(e)) return true;
  if (host.startsWith('*.')) {
    const suffix = host.slice(2);
    // `.x.com` or `x.com` covers every subdomain; `a.x.com` covers one of them.
    return suffix === e || suffix.endsWith(`.${e}`) || e.endsWith(`.${suffix}`);
  }
  return host === e || host.endsWith(`.${e}`);
}

export interface NoProxyResult {
  value: string;
  /** entries taken out, each with the integration host it would have sent around credproxy */
  removed: Array<{ entry: string; host: string }>;
}

export function noProxyWithout(noProxy: string, hosts: readonly string[]): NoProxyResult {
  const names = integrationHostnames(hosts);
  const kept: string[] = [];
  const removed: NoProxyResult['removed'] = [];
  for (const entry of noProxy.split(',').map((e) => e.trim()).filter((e) => e !== '')) {
    const host = names.find((h) => covers(entry, h));
    if (host === undefined) kept.push(entry);
    else removed.push({ entry, host });
  }
  return { value: kept.join(','), removed };
}
