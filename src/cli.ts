import cluster from 'node:cluster';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startCredproxy } from './app.js';
import { SCHEMES } from './auth/registry.js';
import { ConfigError, loadConfig } from './config/load.js';
import type { Settings } from './config/types.js';
import { createLogger, type LogFormat } from './log.js';
import { installShutdown } from './shutdown.js';
import { CA_CERT_FILE, loadOrCreateCa } from './tls/ca.js';
import { readAgentConfig } from './cli/agent-config.js';
import { isAdminCommand, runAdminCommand } from './cli/admin.js';
import { COMMAND_HELP, MAIN_HELP } from './cli/help.js';
import { isAgentCommand, runAgentCommand } from './cli/agent.js';
import { runAuditCommand } from './cli/audit.js';
import { runMigrateCommand } from './cli/migrate.js';
import { isStoreCommand, runStoreCommand } from './cli/keys.js';
import { promptSecret } from './cli/prompt.js';
import { startPrimary, workerId, workerReady, workerShutdownSource, workersProblem } from './cluster.js';

const HELP = MAIN_HELP;

function fail(message: string, code: number): never {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

export async function main(argv: string[]): Promise<void> {
  if (isAgentCommand(argv)) {
    process.exitCode = await runAgentCommand(argv, { stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t), env: process.env, readStdin: async () => '' });
    return;
  }
  if (argv[0] === 'migrate') {
    process.exitCode = await runMigrateCommand(argv, { stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t), env: process.env, readStdin: async () => '' });
    return;
  }
  if (isStoreCommand(argv)) {
    // First SIGINT: rekey finishes the records under way and reports; a second one ends it at once.
    const abort = new AbortController();
    process.once('SIGINT', () => abort.abort());
    process.exitCode = await runStoreCommand(argv, {
      stdout: (t) => process.stdout.write(t),
      stderr: (t) => process.stderr.write(t),
      env: process.env,
      readStdin: async () => '',
      isTTY: process.stderr.isTTY,
      ...(process.stdin.isTTY ? { promptSecret } : {}),
      signal: abort.signal,
    });
    return;
  }
  if (argv[0] === 'audit') {
    process.exitCode = await runAuditCommand(argv, { stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t), env: process.env, readStdin: async () => '' });
    return;
  }
  if (isAdminCommand(argv)) {
    process.exitCode = await runAdminCommand(argv, {
      stdout: (t) => process.stdout.write(t),
      stderr: (t) => process.stderr.write(t),
      env: process.env,
      readStdin: async () => {
        const chunks: Buffer[] = [];
        for await (const c of process.stdin) chunks.push(c as Buffer);
        return Buffer.concat(chunks).toString('utf8');
      },
    });
    return;
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string' },
        port: { type: 'string' },
        host: { type: 'string' },
        'log-format': { type: 'string' },
        workers: { type: 'string' },
        create: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    fail(`${(err as Error).message}\n\n${HELP}`, 2);
  }
  const { values, positionals } = parsed;
  const command = positionals[0];
  if (values.help || !command) {
    process.stdout.write((command && COMMAND_HELP[command]) || HELP);
    return;
  }
  const configDir = resolve(values.config ?? process.env.CREDPROXY_CONFIG ?? 'config');
  let port: number | undefined;
  if (values.port !== undefined) {
    port = Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`--port: "${values.port}" is not a port number`, 2);
  }
  let workers = 1;
  if (values.workers !== undefined) {
    workers = Number(values.workers);
    if (!Number.isInteger(workers) || workers < 1 || workers > 256) fail(`--workers: "${values.workers}" is not a number of processes (1 to 256)`, 2);
  }
  const format = values['log-format'] ?? (process.stdout.isTTY ? 'pretty' : 'json');
  if (format !== 'json' && format !== 'pretty') fail(`--log-format: expected json or pretty`, 2);

  switch (command) {
    case 'validate': {
      try {
        const config = loadConfig(configDir, { schemes: SCHEMES });
        process.stdout.write(`${configDir}: ok (${config.integrations.size} integration${config.integrations.size === 1 ? '' : 's'})\n`);
      } catch (err) {
        if (err instanceof ConfigError) fail(err.message, 1);
        throw err;
      }
      return;
    }
    case 'ca': {
      // The path alone on stdout, so that `curl --cacert "$(credproxy ca)"` works. Reads only
      // tls.ca_dir (the server's ${VAR} secrets need not be set), and creates a CA only when
      // asked: a second CA beside the one the running proxy uses would fail every client.
      try {
        const { caDir } = readAgentConfig(configDir, process.env);
        const certPath = join(caDir, CA_CERT_FILE);
        if (values.create) {
          const ca = loadOrCreateCa(caDir);
          if (ca.created) process.stderr.write(`credproxy: created a new local CA in ${caDir}\n`);
        } else if (!existsSync(certPath)) {
          fail(`credproxy ca: no CA in ${caDir} (looked for ${certPath}, tls.ca_dir of ${configDir}): credproxy start creates it, or credproxy ca --create`, 1);
        }
        process.stdout.write(`${certPath}\n`);
      } catch (err) {
        if (err instanceof ConfigError) fail(err.message, 1);
        fail(`credproxy: ${(err as Error).message}`, 1);
      }
      return;
    }
    case 'start': {
      // Whatever the server or a library it uses creates (SQLite's -wal/-shm, rotated logs) is
      // its own user's only; the files it creates knowingly also get explicit modes.
      process.umask(0o077);
      // Read once here for the log level and the workers' primary; a config that does not
      // validate is reported below, where it is used.
      let loaded: { settings?: Settings; error?: unknown };
      try {
        loaded = { settings: loadConfig(configDir, { host: values.host, port, schemes: SCHEMES }).settings };
      } catch (error) {
        loaded = { error };
      }
      // LOG_LEVEL wins (a one-off debugging run); else credproxy.yaml's log.level, which a reload may change later.
      const base = createLogger({ format: format as LogFormat, level: process.env.LOG_LEVEL ?? loaded.settings?.log.level });
      if (workers > 1 && cluster.isPrimary) {
        try {
          const settings = loaded.settings;
          if (!settings) throw loaded.error;
          const problem = workersProblem(settings, workers, process.env);
          if (problem) fail(`credproxy: ${problem}`, 1);
          const primary = await startPrimary({ workers, settings, log: base });
          const shown = settings.listen.host.includes(':') ? `[${settings.listen.host}]` : settings.listen.host;
          base.info({ url: `http://${shown}:${primary.port}`, workers, pid: process.pid, worker_pids: primary.pids }, 'credproxy workers listening');
          process.exitCode = await primary.done;
        } catch (err) {
          if (err instanceof ConfigError) fail(`credproxy: the config does not validate:\n${err.message}`, 1);
          fail(`credproxy: ${(err as Error).message}`, 1);
        }
        return;
      }
      const worker = workerId();
      const logger = worker === undefined ? base : base.child({ worker });
      try {
        const running = await startCredproxy({ configDir, host: values.host, port, logger, processMetrics: true, watch: true, reloadOnSighup: true });
        installShutdown(running, {
          graceMs: running.runtime.current.config.settings.limits.shutdown_grace_ms,
          log: logger,
          ...(worker === undefined ? {} : { proc: workerShutdownSource() }),
        });
        if (worker !== undefined) workerReady(running.port, running.runtime.metrics.registry);
      } catch (err) {
        if (err instanceof ConfigError) fail(`credproxy: the config does not validate:\n${err.message}`, 1);
        fail(`credproxy: ${(err as Error).message}`, 1);
      }
      return;
    }
    default:
      fail(`unknown command "${command}"\n\n${HELP}`, 2);
  }
}

await main(process.argv.slice(2));
