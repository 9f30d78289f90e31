import type { Document, Node } from 'yaml';
import { HOST_LABEL, hostParamNames, urlTemplateNames } from './host-template.js';
import { parseHostPattern, type HostPattern } from './hosts.js';
import { fingerprintOf, type AuthDefinition, type CompiledInject, type SchemeCatalog, type SchemeTraits } from './scheme-definition.js';
import { readLogo } from './logo.js';
import { lineOf, type SpecContext } from './spec.js';
import { compileTemplate } from './template.js';
import { checkVerify } from './verify.js';
import type { AuthConfig, InjectConfig, IntegrationConfig, ParamConfig } from './types.js';

/** Headers the proxy itself owns on the upstream hop; injecting them would break framing or routing. */
const RESERVED_HEADERS = new Set([
  'host', 'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'proxy-connection',
  'proxy-authorization', 'proxy-authenticate', 'te', 'trailer', 'upgrade',
]);

/**
 * The checks on an integration that need more than its shape: host patterns, what each
 * scheme's definition finds in its entry (`catalog`), and the templates. Problems are
 * reported at the line of the offending value. No scheme is built here.
 */
export function checkIntegration(
  ctx: SpecContext,
  doc: Document,
  raw: Record<string, unknown>,
  fallbackName: string,
  catalog: SchemeCatalog,
): IntegrationConfig | undefined {
  const before = ctx.problems.length;
  const problem = (path: (string | number)[], message: string) =>
    ctx.problems.push({ file: ctx.file, line: lineOf(ctx, doc.getIn(path, true) as Node | undefined), message });

  const name = (raw.name as string | undefined) ?? fallbackName;
  if (!/^[a-z0-9_-]+$/.test(name)) {
    problem([], `name: the file name "${fallbackName}" is not a valid integration name ([a-z0-9_-]+); rename the file or set name:`);
  }
  const upstream = (raw.upstream as 'https' | 'http' | undefined) ?? 'https';
  const params = (raw.params as ParamConfig[] | undefined) ?? [];
  const paramNames = new Set(params.map((p) => p.name));

  const hosts: HostPattern[] = [];
  (raw.hosts as string[]).forEach((h, i) => {
    const parsed = parseHostPattern(h, upstream === 'https' ? 443 : 80);
    if (typeof parsed === 'string') return problem(['hosts', i], `hosts[${i}]: ${parsed}`);
    if (parsed.template) {
      for (const [, n] of parsed.host.matchAll(/\{\{([a-z0-9_]+)\}\}/g)) {
        if (!paramNames.has(n!)) problem(['hosts', i], `hosts[${i}]: {{${n}}} is not a declared param (declare it under params:)`);
      }
    }
    hosts.push(parsed);
  });

  const paths = ((raw.paths as string[] | undefined) ?? ['/']).map((p) => (p.length > 1 ? p.replace(/\/+$/, '') : p));
  const authList = Array.isArray(raw.auth) ? (raw.auth as AuthConfig[]) : [raw.auth as AuthConfig];
  const authPath = (i: number) => (Array.isArray(raw.auth) ? ['auth', i] : ['auth']);

  const names = new Set(['entity', ...paramNames]);
  const described: Array<{ config: AuthConfig; traits: SchemeTraits; resolved: unknown; i: number }> = [];
  authList.forEach((config, i) => {
    const definition = catalog[config.type];
    if (!definition) return problem([...authPath(i), 'type'], `auth.type: "${config.type}" is not supported by this version of credproxy yet`);
    // The spec validated `config` against this definition's own variant: the type it declared.
    const { traits, problems = [], resolved } = definition.describe(config as never, { names });
    for (const p of problems) problem([...authPath(i), ...p.key], p.message);
    described.push({ config, traits, resolved, i });
  });

  const hostParams = hostParamNames(hosts, described);
  params.forEach((p, i) => {
    if (p.default !== undefined && hostParams.has(p.name) && !HOST_LABEL.test(p.default)) {
      problem(['params', i, 'default'], `params[${i}].default: "${p.name}" names a host, so its default must be one DNS label (a-z, 0-9, -)`);
    }
  });

  const schemes: AuthDefinition[] = described.map(({ config, traits, resolved, i }) => {
    for (const { key, name: n } of urlTemplateNames({ config, traits })) {
      if (!paramNames.has(n)) problem([...authPath(i), key], `${key}: {{${n}}} is not a declared param (declare it under params:)`);
    }
    const injectConfig: InjectConfig = config.inject ?? (raw.inject as InjectConfig | undefined) ?? traits.defaultInject;
    const known = new Set([...names, ...traits.fields.map((f) => f.name), ...traits.computed]);
    const injectPath = config.inject ? [...authPath(i), 'inject'] : ['inject'];
    // A signing scheme puts its credential on the request itself; an inject is optional there.
    const inject = compileInject(injectConfig, known, (key, msg) => problem([...injectPath, ...key], msg), traits.signs);
    // Secrets are in the hashed input (a rotated key is a new definition); only the hash is kept.
    return { type: config.type, config, traits, inject, fingerprint: fingerprintOf({ config, resolved }) };
  });
  const types = authList.map((a) => a.type);
  const dup = types.find((t, i) => types.indexOf(t) !== i);
  if (dup) problem(['auth'], `auth: the type "${dup}" is listed twice; a connection picks a scheme by its type`);
  let display = raw.display as IntegrationConfig['display'];
  if (display?.logo_file !== undefined) {
    if (display.logo_url !== undefined) problem(['display', 'logo_file'], 'display: give logo_url or logo_file, not both');
    const logo = readLogo(display.logo_file);
    if (typeof logo === 'string') problem(['display', 'logo_file'], `display.logo_file: ${logo}`);
    else display = { ...display, logo };
  }
  const verify = checkVerify(raw.verify as Parameters<typeof checkVerify>[0], hosts, paths, upstream === 'https' ? 443 : 80, (key, msg) => problem(['verify', ...key], msg));

  if (ctx.problems.length > before) return undefined;
  return {
    name,
    file: ctx.file,
    hosts,
    upstream,
    paths,
    params,
    refresh_on: (raw.refresh_on as number[] | undefined) ?? [401],
    inject: raw.inject as InjectConfig | undefined,
    description: raw.description as string | undefined,
    display,
    verify,
    placeholder_env: raw.placeholder_env as string | undefined,
    scrub_responses: (raw.scrub_responses as boolean | undefined) ?? false,
    limits: raw.limits as { requests_per_minute?: number } | undefined,
    schemes,
  };
}

function compileInject(
  config: InjectConfig,
  known: Set<string>,
  problem: (key: string[], message: string) => void,
  optional = false,
): CompiledInject {
  const check = (key: string[], source: string) => {
    const t = compileTemplate(source);
    for (const n of t.names) {
      if (!known.has(n)) problem(key, `${key.join('.')}: {{${n}}} is not something this scheme supplies; known: ${[...known].join(', ')}`);
    }
    return t;
  };
  const seen = new Set<string>();
  const headers = Object.entries(config.headers ?? {}).map(([name, value]) => {
    if (RESERVED_HEADERS.has(name.toLowerCase())) problem(['headers', name], `headers.${name}: credproxy manages this header itself; it cannot be injected`);
    // Header names are case-insensitive: two spellings would send the credential twice.
    if (seen.has(name.toLowerCase())) problem(['headers', name], `headers.${name}: the header is listed twice (names are case-insensitive)`);
    seen.add(name.toLowerCase());
    return { name, lower: name.toLowerCase(), value: check(['headers', name], value) };
  });
  const query = Object.entries(config.query ?? {}).map(([name, value]) => ({ name, value: check(['query', name], value) }));
  if (headers.length === 0 && query.length === 0 && !optional) problem([], 'inject: needs at least one header or query parameter');
  return { headers, query };
}
