import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError } from '../config/load.js';
import { CA_CERT_FILE } from '../tls/ca.js';
import { adminToken, EXIT, exitCodeFor, UsageError, type CliIO } from './admin.js';
import { readAgentConfig } from './agent-config.js';
import { agentVariables, childEnvironment, SHELLS } from './agent-env.js';
import { writeClientFiles } from './client-files.js';
import { noProxyWithout } from './no-proxy.js';
import { startRelay, type Relay } from './relay.js';
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
  relay?: Relay;
}

/**
 * What `env` prints and `run` sets: reads the config folder (CA, placeholder_env, integration
 * hosts for NO_PROXY), asks the running proxy's admin API for a token when one is needed
 * (--token, or an integration with placeholder_env), and for `run` opens the relay.
 */
async function prepare(command: string, values: Record<string, string | boolean | undefined>, io: CliIO, prepared: Prepared): Promise<void> {
  const entity = values.entity as string | undefined;
  if (!entity) throw new UsageError('--entity E is required: the entity the command acts for');
  let ttl: number | undefined;
  if (values.ttl !== undefined) {
    ttl = Number(values.ttl);
    if (!Number.isInteger(ttl) || ttl < 1) throw new UsageError(`--ttl "${values.ttl}": expected a whole number of seconds`);
  }
  const url = (values.url as string | undefined) ?? io.env.CREDPROXY_URL ?? 'http://127.0.0.1:8080';
  if (!/^https?:\/\/[^/]+/.test(url)) throw new UsageError(`--url "${url}" is not an http(s) URL`);
  // Only tls, store, hosts and placeholder_env (agent-config.ts): the server's ${VAR} secrets need not be set here.
  const configDir = resolve((values.config as string | undefined) ?? io.env.CREDPROXY_CONFIG ?? 'config');
  const config = readAgentConfig(configDir, io.env);
  const { placeholders } = config;
  const label = values.label as string | undefined;
  // The label travels in the entity token: without one in the environment it would reach no request.
  if (label !== undefined && !values.token && placeholders.length === 0) {
    throw new UsageError('--label is carried by the entity token: add --token (no integration declares placeholder_env)');
  }
  let files: ReturnType<typeof writeClientFiles> | undefined;
  if (config.intercept) {
    // The agent side only reads the CA the server created: a second, unrelated CA here would
    // make every client fail TLS against the running proxy.
    const certPath = join(config.caDir, CA_CERT_FILE);
    if (!existsSync(certPath)) {
      throw new UsageError(`no CA in ${config.caDir} (looked for ${certPath}, tls.ca_dir of ${configDir}): start credproxy with this config first (it creates the CA), or create one with credproxy ca --create --config ${configDir}`);
    }
    files = writeClientFiles(config.caDir, readFileSync(certPath, 'utf8'), io.env);
  }
  prepared.envRefs = config.envRefs;
  let token: string | undefined;
  if (values.token || placeholders.length > 0) {
    // The token the server generated lives in its data folder, found from the config as the server finds it.
    const tokenFile = config.dataDir ? join(config.dataDir, 'admin.token') : undefined;
    prepared.client = cliClient(url, adminToken(values as { 'token-file'?: string }, io.env, tokenFile));
    const b = await prepared.client.tokens.issue(entity, { ...(ttl === undefined ? {} : { ttl }), ...(label === undefined ? {} : { label }) });
    token = b.token;
    prepared.issued = { id: b.id, expires_at: b.expires_at };
  }
  // An inherited NO_PROXY is kept, less what would send an integration's host around credproxy.
  const given = (values['no-proxy'] as string | undefined) ?? io.env.NO_PROXY ?? io.env.no_proxy;
  const noProxy = noProxyWithout(given ?? DEFAULT_NO_PROXY, config.hosts);
  if (given !== undefined) {
    for (const { entry, host } of noProxy.removed) {
      io.stderr(`credproxy ${command}: NO_PROXY entry "${entry}" would send integration host ${host} around credproxy (no credential, a placeholder to the host): left out\n`);
    }
  }
  if (command === 'run') prepared.relay = await startRelay({ proxyUrl: url, entity, token });
  prepared.vars = agentVariables({
    proxyUrl: prepared.relay?.url ?? url,
    relay: prepared.relay !== undefined,
    entity,
    token,
    noProxy: noProxy.value,
    bundle: files?.bundle,
    wgetrc: files?.wgetrc,
    trustStore: files?.trustStore,
    placeholders,
    nodeOptions: io.env.NODE_OPTIONS,
    javaToolOptions: io.env.JAVA_TOOL_OPTIONS,
    gitConfigCount: io.env.GIT_CONFIG_COUNT,
  });
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
  const prepared: Prepared = { vars: [], envRefs: [] };
  try {
    const shell = values.shell ?? 'sh';
    const format = SHELLS[shell];
    if (command === 'env') {
      if (!format) throw new UsageError(`--shell "${shell}": expected ${Object.keys(SHELLS).join(', ')}`);
      if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    } else if (positionals.length === 0) {
      throw new UsageError('no command: credproxy run --entity E -- CMD ARGS...');
    }
    await prepare(command, values, io, prepared);
    if (command === 'env') {
      const lines = prepared.vars.map(([n, v]) => format!(n, v));
      if (prepared.issued) lines.unshift(`# entity token ${prepared.issued.id}, valid until ${prepared.issued.expires_at}`);
      io.stdout(`${lines.join('\n')}\n`);
      return EXIT.ok;
    }
    return await runChild(positionals, { ...childEnvironment(io.env, prepared.envRefs), ...Object.fromEntries(prepared.vars) });
  } catch (err) {
    if (err instanceof ConfigError) {
      io.stderr(`credproxy ${command}: the config does not validate:\n${err.message}\n`);
      return EXIT.api;
    }
    return exitCodeFor(err, io, command, `(see credproxy ${command} --help)\n`);
  } finally {
    await prepared.relay?.close();
    // run's token was for this run only: revoked however the command ended (exit, signal, killed).
    if (command === 'run' && prepared.issued && prepared.client) {
      await prepared.client.tokens.revoke(prepared.issued.id).catch((err: Error) => {
        io.stderr(`credproxy run: could not revoke entity token ${prepared.issued!.id} (${err.message}); it expires at ${prepared.issued!.expires_at}\n`);
      });
    }
    await prepared.client?.close();
  }
}

/** Runs the command with inherited stdio; its exit code, or 128 + the signal number, as a shell reports it. */
function runChild(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((done) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: 'inherit', env });
    // Signals go to the command; run stays to revoke the token once the command has ended.
    const forward = (sig: NodeJS.Signals) => child.kill(sig);
    process.on('SIGINT', forward).on('SIGTERM', forward).on('SIGHUP', forward);
    const finish = (code: number) => {
      process.off('SIGINT', forward).off('SIGTERM', forward).off('SIGHUP', forward);
      done(code);
    };
    child.once('error', (err) => {
      process.stderr.write(`credproxy run: cannot run ${argv[0]}: ${(err as NodeJS.ErrnoException).code ?? err.message}\n`);
      finish(127);
    });
    child.once('exit', (code, signal) => finish(code ?? 128 + (signal ? constants.signals[signal] : 0)));
  });
}
