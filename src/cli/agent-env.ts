import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rootCertificates } from 'node:tls';
import { makePrivateDir, PRIVATE_FILE, tightenIfExists } from '../store/private-files.js';

/** The variables common clients read for their CA bundle; all point at the one combined file. */
export const CA_VARS = ['SSL_CERT_FILE', 'NODE_EXTRA_CA_CERTS', 'REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE', 'GIT_SSL_CAINFO', 'PIP_CERT'] as const;

/** Where distributions keep the system bundle, first match wins. */
const SYSTEM_BUNDLES = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/cert.pem', '/etc/ssl/ca-bundle.pem'];

/**
 * The CAs the environment trusts today: `$SSL_CERT_FILE` when set (a corporate bundle), else
 * the system bundle, and always node's own roots. Kept in the combined bundle so that
 * passthrough HTTPS (package registries, …) still verifies once SSL_CERT_FILE points at it.
 */
export function systemCas(env: NodeJS.ProcessEnv, ownBundle?: string): string[] {
  const out: string[] = [];
  // A shell that ran `credproxy env` before points SSL_CERT_FILE at our own bundle: not a source.
  const given = env.SSL_CERT_FILE && env.SSL_CERT_FILE !== ownBundle ? env.SSL_CERT_FILE : undefined;
  const file = given ?? SYSTEM_BUNDLES.find((f) => existsSync(f));
  if (file) {
    try {
      out.push(readFileSync(file, 'utf8').trim());
    } catch {
      /* unreadable: node's roots still go in */
    }
  }
  out.push(...rootCertificates.map((c) => c.trim()));
  return out;
}

/**
 * Writes system CAs + credproxy's CA to `file` and returns its path. Mode 0600 like every file
 * in the data folder: the certificates are public, but the folder is the proxy user's alone
 * and the agent runs as that user (`credproxy run`).
 */
export function writeBundle(file: string, credproxyCaPem: string, env: NodeJS.ProcessEnv): string {
  makePrivateDir(join(file, '..'));
  const parts = [`# credproxy CA (intercepted HTTPS)\n${credproxyCaPem.trim()}`, ...systemCas(env, file)];
  writeFileSync(file, `${parts.join('\n')}\n`, { mode: PRIVATE_FILE });
  // An existing bundle keeps its old mode through writeFileSync.
  tightenIfExists(file);
  return file;
}

export interface AgentEnvInput {
  proxyUrl: string;
  entity: string;
  /** the entity token: placeholder value and proxy password */
  token?: string;
  /** `run`'s loopback relay: it names the entity, so the proxy URL carries no credential and placeholders no token */
  relay?: boolean;
  noProxy: string;
  bundle?: string;
  /** `<ca_dir>/wgetrc`, naming the bundle for wget (GnuTLS builds read no CA variable) */
  wgetrc?: string;
  /** `<ca_dir>/bundle.p12`, the bundle as a Java trust store */
  trustStore?: string;
  /** the caller's GIT_CONFIG_COUNT: our pair goes after theirs */
  gitConfigCount?: string;
  /** the caller's JAVA_TOOL_OPTIONS, kept ahead of ours */
  javaToolOptions?: string;
  /** variable names from integrations' `placeholder_env` */
  placeholders: string[];
  /** the caller's NODE_OPTIONS, kept ahead of the fetch preload */
  nodeOptions?: string;
  /** bin/fetch-proxy.mjs; default: found next to this module */
  fetchPreload?: string;
}

/**
 * bin/fetch-proxy.mjs, the preload that makes Node's built-in fetch() use the proxy: two
 * folders up from src/cli/ (tests), three from dist/src/cli/ (the package).
 */
export function fetchPreloadPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    const file = join(dir, 'bin', 'fetch-proxy.mjs');
    if (existsSync(file)) return file;
    dir = dirname(dir);
  }
  throw new Error('bin/fetch-proxy.mjs is missing from the credproxy package');
}

/** NODE_OPTIONS with `--import <preload>` added once; the path is quoted as NODE_OPTIONS parses it. */
export function nodeOptionsWith(existing: string | undefined, preload: string): string {
  const flag = `--import "${preload.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  const before = (existing ?? '').trim();
  if (before.includes(flag)) return before;
  return before === '' ? flag : `${before} ${flag}`;
}

/** The variables, in a stable order: proxies, NO_PROXY, CA bundle, placeholders, Node's fetch. */
export function agentVariables(input: AgentEnvInput): Array<[string, string]> {
  const u = new URL(input.proxyUrl);
  if (!input.relay) {
    u.username = encodeURIComponent(input.entity);
    // The token as the proxy password makes credproxy terminate every tunnel of this client
    // (tunnel.ts), so a token the client misplaces is seen and refused, even inside TLS.
    // Without one, a placeholder password: Python's requests drops a proxy user that has none.
    u.password = input.token ? encodeURIComponent(input.token) : 'x';
  }
  const proxy = u.href.replace(/\/$/, '');
  const vars: Array<[string, string]> = [];
  for (const name of ['HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy']) vars.push([name, proxy]);
  vars.push(['NO_PROXY', input.noProxy], ['no_proxy', input.noProxy]);
  if (input.bundle) for (const name of CA_VARS) vars.push([name, input.bundle]);
  if (input.wgetrc) vars.push(['WGETRC', input.wgetrc]);
  // Behind the relay the SDK's key is a stand-in credproxy replaces: the command holds no token.
  if (input.token) for (const name of input.placeholders) vars.push([name, input.relay ? RELAY_PLACEHOLDER : input.token]);
  // git's libcurl sends proxy credentials only after a 407 challenge, credproxy answers 400
  // entity_required instead: `basic` sends them with the CONNECT. (Behind the relay it is moot.)
  // Appended after any GIT_CONFIG_* pairs the caller already has.
  if (!input.relay) {
    const n = /^\d+$/.test(input.gitConfigCount ?? '') ? Number(input.gitConfigCount) : 0;
    vars.push(['GIT_CONFIG_COUNT', String(n + 1)], [`GIT_CONFIG_KEY_${n}`, 'http.proxyAuthMethod'], [`GIT_CONFIG_VALUE_${n}`, 'basic']);
  }
  vars.push(['JAVA_TOOL_OPTIONS', javaOptions(input, u)]);
  // Node 20/22's fetch() ignores HTTP(S)_PROXY and would take a cpx_ placeholder straight to
  // the host: the preload routes it through the proxy; Node 24 reads NODE_USE_ENV_PROXY.
  vars.push(['NODE_OPTIONS', nodeOptionsWith(input.nodeOptions, input.fetchPreload ?? fetchPreloadPath())], ['NODE_USE_ENV_PROXY', '1']);
  return vars;
}

/** What `run` puts where an SDK expects its key: not a token, credproxy replaces it like any client-sent key. */
export const RELAY_PLACEHOLDER = 'credproxy-placeholder';

/**
 * Java reads no proxy or CA variable: system properties through JAVA_TOOL_OPTIONS (every JVM
 * reads it). Java's HttpClient never sends proxy credentials on CONNECT, so only `run`'s relay
 * names the entity for it. NO_PROXY becomes http.nonProxyHosts, which otherwise defaults to
 * localhost|127.*|[::1].
 */
function javaOptions(input: AgentEnvInput, proxy: URL): string {
  const port = proxy.port || '80';
  const nonProxy = input.noProxy
    .split(',')
    .map((e) => e.trim().replace(/^\./, '*.'))
    .filter((e) => e !== '')
    .join('|');
  const props = [
    `-Dhttp.proxyHost=${proxy.hostname}`,
    `-Dhttp.proxyPort=${port}`,
    `-Dhttps.proxyHost=${proxy.hostname}`,
    `-Dhttps.proxyPort=${port}`,
    `-Dhttp.nonProxyHosts=${nonProxy}`,
  ];
  if (input.trustStore) props.push(`-Djavax.net.ssl.trustStore=${input.trustStore}`, '-Djavax.net.ssl.trustStoreType=PKCS12');
  const before = (input.javaToolOptions ?? '').trim();
  return [before, ...props].filter((p) => p !== '').join(' ');
}

/** The server's own secrets: an agent that holds the admin token can mint a token for any entity. */
export const SERVER_SECRETS = ['CREDPROXY_ADMIN_TOKEN', 'CREDPROXY_SECRET_KEY', 'CREDPROXY_SECRET_KEYS', 'CREDPROXY_SECRET_KEYS_FILE', 'CREDPROXY_EXPORT_PASSPHRASE'] as const;

/**
 * Variables a process needs to run at all and that are never a secret: kept even when the
 * config names one (`ca_dir: ${HOME}/…`).
 */
const ALWAYS_KEPT = new Set(['PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'PWD', 'TMPDIR', 'TMP', 'TEMP', 'LANG', 'TERM']);

/**
 * The environment `credproxy run` gives its command: the caller's, without the server's
 * secrets and without any variable the config refers to as `${VAR}` (credentials the
 * integrations or webhooks read). The agent gets the proxy and a token, not what is behind them.
 */
export function childEnvironment(env: NodeJS.ProcessEnv, configRefs: readonly string[]): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...env };
  for (const name of SERVER_SECRETS) delete out[name];
  for (const name of configRefs) if (!ALWAYS_KEPT.has(name)) delete out[name];
  return out;
}

type Formatter = (name: string, value: string) => string;

/** One line per variable in the shell's own quoting, so any value round-trips. */
export const SHELLS: Record<string, Formatter> = {
  sh: (n, v) => `export ${n}='${v.replace(/'/g, `'\\''`)}'`,
  fish: (n, v) => `set -gx ${n} '${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`,
  powershell: (n, v) => `$env:${n} = '${v.replace(/'/g, "''")}'`,
};
