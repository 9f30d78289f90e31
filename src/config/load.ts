import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, extname, isAbsolute, join, resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { checkIntegration } from './integration.js';
import type { SchemeCatalog } from './scheme-definition.js';
import { integrationSpecFor, settingsSpec } from './schema.js';
import { validate, type Problem, type SpecContext } from './spec.js';
import type { Config, IntegrationConfig, Settings } from './types.js';

/** Every problem found in one load, each as `file:line: message`. */
export class ConfigError extends Error {
  readonly problems: readonly Problem[];
  constructor(problems: Problem[]) {
    super(problems.map(formatProblem).join('\n'));
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export function formatProblem(p: Problem): string {
  return `${p.file}:${p.line}: ${p.message}`;
}

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  /** command-line overrides, which win over the file and PORT */
  host?: string;
  port?: number;
  /**
   * The auth schemes integrations may use, keyed by type: src/auth/registry.ts SCHEMES, or
   * that plus a scheme of one's own (withSchemes). Passed in, so the config layer knows no scheme's code.
   */
  schemes?: SchemeCatalog;
}

/** Parses one YAML file into its document node, reporting syntax errors with their line. */
function parseFile(file: string, problems: Problem[], env: NodeJS.ProcessEnv) {
  const text = readFileSync(file, 'utf8');
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const ctx: SpecContext = { file, lines, env, problems };
  if (doc.errors.length > 0) {
    for (const e of doc.errors) {
      const line = e.linePos?.[0]?.line ?? lines.linePos(e.pos[0]).line;
      problems.push({ file, line, message: e.message.split('\n')[0] ?? e.message });
    }
    return undefined;
  }
  return { doc, ctx };
}

function defaults(raw: Record<string, unknown>, opts: LoadOptions, env: NodeJS.ProcessEnv): Settings {
  const r = raw as Partial<Settings> & { listen?: string; limits?: Partial<Settings['limits']>; audit?: Partial<Settings['audit']> };
  const listen = parseListen(r.listen ?? '127.0.0.1:8080');
  if (env.PORT && /^\d+$/.test(env.PORT)) listen.port = Number(env.PORT);
  if (opts.host) listen.host = opts.host;
  if (opts.port !== undefined) listen.port = opts.port;
  const shownHost = listen.host === '0.0.0.0' || listen.host === '::' ? 'localhost' : listen.host;
  return {
    listen,
    public_url: (r.public_url ?? `http://${shownHost.includes(':') ? `[${shownHost}]` : shownHost}:${listen.port}`).replace(/\/+$/, ''),
    entity_header: r.entity_header ?? 'X-Entity-Id',
    store: r.store ?? 'sqlite:./data/credproxy.db',
    store_prefix: r.store_prefix ?? 'credproxy',
    admin_token: r.admin_token,
    clients: r.clients?.map((c) => ({ ...c, entities: c.entities ?? ['*'] })),
    allow_unauthenticated: r.allow_unauthenticated ?? false,
    passthrough: r.passthrough ?? 'allow',
    egress: { allow_private: r.egress?.allow_private ?? [] },
    tls: { intercept: r.tls?.intercept ?? true, ca_dir: r.tls?.ca_dir ?? './data/ca', upstream_ca: r.tls?.upstream_ca },
    connect: { allowed_redirects: r.connect?.allowed_redirects ?? [], frame_ancestors: (r.connect?.frame_ancestors ?? []).map((o) => o.replace(/\/$/, '')) },
    ui: { enabled: r.ui?.enabled },
    limits: {
      replay_body_bytes: r.limits?.replay_body_bytes ?? 1024 * 1024,
      replay_budget_bytes: r.limits?.replay_budget_bytes ?? 64 * 1024 * 1024,
      body_idle_ms: r.limits?.body_idle_ms ?? 30_000,
      admin_body_bytes: r.limits?.admin_body_bytes ?? 1024 * 1024,
      upstream_connect_timeout_ms: r.limits?.upstream_connect_timeout_ms ?? 10_000,
      upstream_response_timeout_ms: r.limits?.upstream_response_timeout_ms ?? 120_000,
      requests_per_minute: r.limits?.requests_per_minute,
      header_bytes: r.limits?.header_bytes ?? 32 * 1024,
      header_count: r.limits?.header_count ?? 100,
      request_header_timeout_ms: r.limits?.request_header_timeout_ms ?? 30_000,
      keep_alive_timeout_ms: r.limits?.keep_alive_timeout_ms ?? 65_000,
      upstream_keep_alive_timeout_ms: r.limits?.upstream_keep_alive_timeout_ms ?? 30_000,
      max_connections: r.limits?.max_connections ?? 4096,
      max_tunnels: r.limits?.max_tunnels ?? 1024,
      // One client may hold half the tunnels unless told otherwise (issue 15: no single client takes every slot).
      max_tunnels_per_client: r.limits?.max_tunnels_per_client ?? Math.max(1, Math.floor((r.limits?.max_tunnels ?? 1024) / 2)),
      new_leaves_per_second: r.limits?.new_leaves_per_second ?? 20,
      shutdown_grace_ms: r.limits?.shutdown_grace_ms ?? 30_000,
    },
    events: r.events,
    log: { level: r.log?.level ?? 'info' },
    metrics: { requests: r.metrics?.requests ?? true },
    audit: { enabled: r.audit?.enabled ?? true, file: r.audit?.file, max_bytes: r.audit?.max_bytes ?? 10 * 1024 * 1024, keep: r.audit?.keep ?? 5 },
  };
}

/**
 * Relative paths in the config mean the same files from any working directory: resolved
 * against the config folder (where credproxy.yaml is), as Compose and most servers do, so
 * `start`, `ca`, `env`, `run` and `validate` given one `--config` share one data folder and CA.
 */
function relativeTo(base: string, s: Settings): Settings {
  const at = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  if (s.store.startsWith('sqlite:') && s.store.length > 'sqlite:'.length) s.store = `sqlite:${at(s.store.slice('sqlite:'.length))}`;
  s.tls.ca_dir = at(s.tls.ca_dir);
  if (s.tls.upstream_ca !== undefined) s.tls.upstream_ca = at(s.tls.upstream_ca);
  if (s.audit.file !== undefined) s.audit.file = at(s.audit.file);
  return s;
}

/** `file:path` keys of an integration's auth (one scheme or a list), resolved like every other path. */
function keyFilesRelativeTo(base: string, auth: unknown): void {
  for (const scheme of Array.isArray(auth) ? auth : [auth]) {
    if (scheme === null || typeof scheme !== 'object') continue;
    const fields = scheme as Record<string, unknown>;
    for (const [k, v] of Object.entries(fields)) {
      if (typeof v === 'string' && v.startsWith('file:') && !isAbsolute(v.slice(5))) fields[k] = `file:${resolve(base, v.slice(5))}`;
    }
  }
}

function parseListen(v: string): { host: string; port: number } {
  const i = v.lastIndexOf(':');
  return { host: v.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(v.slice(i + 1)) };
}

/** Freezes plain data; scheme objects keep their own (private) state. */
function deepFreeze<T>(value: T): T {
  const plain = Array.isArray(value) || (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype);
  if (value instanceof Map) for (const v of value.values()) deepFreeze(v);
  if (plain && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as object)) deepFreeze(v);
  }
  return value;
}

/**
 * Loads and validates a config folder: credproxy.yaml (optional) and integrations/*.yaml.
 * Throws ConfigError with every problem found; on success the result is frozen, so a
 * request that started with it sees the same config to its end.
 */
export function loadConfig(dir: string, opts: LoadOptions & { schemes: SchemeCatalog }): Config {
  const env = opts.env ?? process.env;
  const integrationSpec = integrationSpecFor(opts.schemes);
  const problems: Problem[] = [];
  let st;
  try {
    st = statSync(dir);
  } catch {
    throw new ConfigError([{ file: dir, line: 1, message: 'config folder does not exist' }]);
  }
  if (!st.isDirectory()) throw new ConfigError([{ file: dir, line: 1, message: 'not a folder' }]);

  let rawSettings: Record<string, unknown> = {};
  const settingsFile = ['credproxy.yaml', 'credproxy.yml'].map((f) => join(dir, f)).find(exists);
  if (settingsFile) {
    const parsed = parseFile(settingsFile, problems, env);
    if (parsed && parsed.doc.contents !== null) {
      rawSettings = (validate(parsed.ctx, settingsSpec, parsed.doc.contents, '') as Record<string, unknown>) ?? {};
    }
  }
  const settings = relativeTo(resolve(dir), defaults(rawSettings, opts, env));
  if (env.PORT && !/^\d+$/.test(env.PORT) && opts.port === undefined) {
    // Ignoring it would start credproxy on another port than the operator asked for.
    problems.push({ file: settingsFile ?? dir, line: 1, message: `the PORT environment variable: "${env.PORT.slice(0, 40)}" is not a port number (0 to 65535)` });
  } else if (!(settings.listen.port >= 0 && settings.listen.port <= 65535)) {
    problems.push({ file: settingsFile ?? dir, line: 1, message: `listen: port ${settings.listen.port} is out of range` });
  }

  const integrations = new Map<string, IntegrationConfig>();
  const intDir = join(dir, 'integrations');
  const files = exists(intDir)
    ? readdirSync(intDir)
        .filter((f) => /\.ya?ml$/.test(f))
        .sort()
    : [];
  for (const f of files) {
    const file = join(intDir, f);
    const parsed = parseFile(file, problems, env);
    if (!parsed) continue;
    const raw = validate(parsed.ctx, integrationSpec, parsed.doc.contents, '') as Record<string, unknown> | undefined;
    if (!raw) continue;
    keyFilesRelativeTo(resolve(dir), raw.auth);
    const display = raw.display as { logo_file?: string } | undefined;
    if (display?.logo_file !== undefined && !isAbsolute(display.logo_file)) display.logo_file = resolve(dir, display.logo_file);
    const fallbackName = basename(f, extname(f));
    const integration = checkIntegration(parsed.ctx, parsed.doc, raw, fallbackName, opts.schemes);
    if (!integration) continue;
    const clash = integrations.get(integration.name);
    if (clash) {
      problems.push({ file, line: 1, message: `name: "${integration.name}" is already used by ${clash.file}` });
      continue;
    }
    integrations.set(integration.name, integration);
  }
  checkOverlaps([...integrations.values()], problems);
  if (problems.length > 0) throw new ConfigError(problems);
  return deepFreeze({ dir, settings, integrations });
}

/** Two integrations owning the same host and path prefix would make the owner a coin toss. */
function checkOverlaps(list: IntegrationConfig[], problems: Problem[]): void {
  const owners = new Map<string, IntegrationConfig>();
  for (const i of list) {
    for (const h of i.hosts) {
      for (const p of i.paths) {
        const key = `${h.wildcard ? '*.' : ''}${h.host}:${h.port ?? ''}${p}`;
        const other = owners.get(key);
        if (other) {
          problems.push({
            file: i.file,
            line: 1,
            message: `hosts: "${h.source}" with path "${p}" is already owned by integration "${other.name}" (${other.file})`,
          });
        } else owners.set(key, i);
      }
    }
  }
}

function exists(p: string): boolean {
  try {
    statSync(p);
    return true;
  } catch {
    return false;
  }
}
