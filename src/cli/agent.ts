import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError } from '../config/load.js';
import { BUNDLE_FILE } from '../tls/bundle.js';
import { loadOrCreateCa } from '../tls/ca.js';
import { adminToken, EXIT, exitCodeFor, UsageError, type CliIO } from './admin.js';
import { readAgentConfig } from './agent-config.js';
import { agentVariables, childEnvironment, SHELLS, writeBundle } from './agent-env.js';
import { cliClient, type CredproxyClient } from './client.js';
import { COMMAND_HELP } from './help.js';

const OPTIONS = {
  entity: { type: 'string' },
  token: { type: 'boolean' },
  shell: { type: 'string' },
  url: { type: 'string' },
  'token-file': { type: 'string' },
  config: { type: 'string' },
  'no-proxy': { type: 'string' },
  ttl: { type: 'string' },
  label: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Local services are reached directly, credproxy's own API included. */
export const DEFAULT_NO_PROXY = 'localhost,127.0.0.1,::1';

export function isAgentCommand(argv: readonly string[]): boolean {
  return argv[0] === 'env' || argv[0] === 'run';
}

interface Prepared {
  vars: Array<[string, string]>;
  /** variables the config names as `${VAR}`: the server's secrets, not the agent's */
  envRefs: string[];
  /** the token issued for this environment, if any */
  issued?: { id: string; expires_at: string };
  client?: CredproxyClient;
}

/**
 * What `env` prints and `run` sets: reads the config folder (CA, placeholder_env) and, when a
 * token is needed (--token, or an integration with placeholder_env), asks the running proxy's
 * admin API for one.
 */
async function prepare(values: Record<string, string | boolean | undefined>, io: CliIO): Promise<Prepared> {
  const entity = values.entity as string | undefined;
  if (!entity) throw new UsageError('--entity E is required: the entity the command acts for');
  let ttl: number | undefined;
  if (values.ttl !== undefined) {
    ttl = Number(values.ttl);
    if (!Number.isInteger(ttl) || ttl < 1) throw new UsageError(`--ttl "${values.ttl}": expected a whole number of seconds`);
  }
  const url = (values.url as string | undefined) ?? io.env.CREDPROXY_URL ?? 'http://127.0.0.1:8080';
  if (!/^https?:\/\/[^/]+/.test(url)) throw new UsageError(`--url "${url}" is not an http(s) URL`);
  // Only tls.intercept, tls.ca_dir and placeholder_env: the server's ${VAR} secrets need not be set here.
  const config = readAgentConfig(resolve((values.config as string | undefined) ?? io.env.CREDPROXY_CONFIG ?? 'config'), io.env);
  const { placeholders } = config;
  const label = values.label as string | undefined;
  // The label travels in the entity token: without one in the environment it would reach no request.
  if (label !== undefined && !values.token && placeholders.length === 0) {
    throw new UsageError('--label is carried by the entity token: add --token (no integration declares placeholder_env)');
  }
  let bundle: string | undefined;
  if (config.intercept) {
    const ca = loadOrCreateCa(config.caDir);
    bundle = writeBundle(join(config.caDir, BUNDLE_FILE), ca.certPem, io.env);
  }
  let token: string | undefined;
  let issued: Prepared['issued'];
  let client: CredproxyClient | undefined;
  if (values.token || placeholders.length > 0) {
    client = cliClient(url, adminToken(values as { 'token-file'?: string }, io.env));
    const b = await client.tokens.issue(entity, { ...(ttl === undefined ? {} : { ttl }), ...(label === undefined ? {} : { label }) });
    token = b.token;
    issued = { id: b.id, expires_at: b.expires_at };
  }
  const vars = agentVariables({
    proxyUrl: url,
    entity,
    token,
    noProxy: (values['no-proxy'] as string | undefined) ?? DEFAULT_NO_PROXY,
    bundle,
    placeholders,
    nodeOptions: io.env.NODE_OPTIONS,
  });
  return { vars, envRefs: config.envRefs, issued, client };
}

/** `credproxy env` and `credproxy run`; returns the exit code (run: the command's). */
export async function runAgentCommand(argv: string[], io: CliIO): Promise<number> {
  const [command, ...rest] = argv as [string, ...string[]];
  const help = COMMAND_HELP[command]!;
  let parsed;
  try {
    parsed = parseArgs({ args: rest, allowPositionals: true, options: OPTIONS });
  } catch (err) {
    io.stderr(`credproxy ${command}: ${(err as Error).message}\n\n${help}`);
    return EXIT.usage;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.stdout(help);
    return EXIT.ok;
  }
  let prepared: Prepared | undefined;
  try {
    const shell = values.shell ?? 'sh';
    const format = SHELLS[shell];
    if (command === 'env') {
      if (!format) throw new UsageError(`--shell "${shell}": expected ${Object.keys(SHELLS).join(', ')}`);
      if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    } else if (positionals.length === 0) {
      throw new UsageError('no command: credproxy run --entity E -- CMD ARGS...');
    }
    prepared = await prepare(values, io);
    if (command === 'env') {
      const lines = prepared.vars.map(([n, v]) => format!(n, v));
      if (prepared.issued) lines.unshift(`# entity token ${prepared.issued.id}, valid until ${prepared.issued.expires_at}`);
      io.stdout(`${lines.join('\n')}\n`);
      return EXIT.ok;
    }
    const code = await runChild(positionals, { ...childEnvironment(io.env, prepared.envRefs), ...Object.fromEntries(prepared.vars) });
    // The token was for this run only.
    if (prepared.issued && prepared.client) await prepared.client.tokens.revoke(prepared.issued.id).catch(() => undefined);
    return code;
  } catch (err) {
    if (err instanceof ConfigError) {
      io.stderr(`credproxy ${command}: the config does not validate:\n${err.message}\n`);
      return EXIT.api;
    }
    return exitCodeFor(err, io, command, `(see credproxy ${command} --help)\n`);
  } finally {
    await prepared?.client?.close();
  }
}

/** Runs the command with inherited stdio; its exit code, or 128 + the signal number, as a shell reports it. */
function runChild(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((done) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: 'inherit', env });
    const forward = (sig: NodeJS.Signals) => child.kill(sig);
    process.on('SIGINT', forward).on('SIGTERM', forward);
    const finish = (code: number) => {
      process.off('SIGINT', forward).off('SIGTERM', forward);
      done(code);
    };
    child.once('error', (err) => {
      process.stderr.write(`credproxy run: cannot run ${argv[0]}: ${(err as NodeJS.ErrnoException).code ?? err.message}\n`);
      finish(127);
    });
    child.once('exit', (code, signal) => finish(code ?? 128 + (signal ? constants.signals[signal] : 0)));
  });
}
