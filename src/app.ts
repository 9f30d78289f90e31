import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Agent } from 'undici';
import { SCHEMES, type Schemes } from './auth/registry.js';
import { SchemeSet } from './auth/scheme-set.js';
import { loadConfig, type LoadOptions } from './config/load.js';
import { ConfigReloader, type ReloadOutcome } from './reload.js';
import type { Config } from './config/types.js';
import { Events, STATUS_EVENTS, type EventOptions } from './events.js';
import { createLogger } from './log.js';
import { checkListenPolicy } from './proxy/client-auth.js';
import { egressAgent, parseCidrs } from './proxy/egress.js';
import { passthroughTrust } from './tls/bundle.js';
import { Metrics } from './metrics.js';
import { closeRuntime, instanceState, snapshotOf, type Runtime } from './runtime.js';
import { closeTunnels, createServer } from './server.js';
import { drainOnClose } from './shutdown.js';
import { observeStore } from './store/observed.js';
import { openStore } from './store/open.js';
import type { RedisTuning } from './store/redis.js';
import { readOrCreateSecret } from './store/secret-file.js';
import { createTlsRuntime } from './tls/runtime.js';

export interface StartOptions extends LoadOptions {
  configDir: string;
  /** the auth schemes integrations may use; default the built-in ones (withSchemes adds one) */
  schemes?: Schemes;
  logger?: Logger;
  /** collect process metrics too (off in tests that run several instances) */
  processMetrics?: boolean;
  /** Redis store timings (tests shorten them) */
  redis?: Partial<RedisTuning>;
  /** reload when files in the config folder change (credproxy start: on) */
  watch?: boolean;
  /** reload on SIGHUP (credproxy start: on) */
  reloadOnSighup?: boolean;
  /** called after every reload attempt, good or not */
  onReload?: (outcome: ReloadOutcome) => void;
  /** debounce of file events, ms */
  reloadDebounceMs?: number;
  /** retry and queue tuning of webhook delivery (tests shorten the backoff) */
  events?: Partial<Pick<EventOptions, 'attempts' | 'baseDelayMs' | 'maxDelayMs' | 'maxQueue' | 'timeoutMs'>>;
}

export interface RunningCredproxy {
  url: string;
  port: number;
  server: Server;
  runtime: Runtime;
  /** reloads the config folder now, as SIGHUP does */
  reload(): ReloadOutcome;
  close(): Promise<void>;
}

function adminTokenFor(config: Config, env: NodeJS.ProcessEnv, dataDir: string | undefined, log: Logger): string {
  const given = config.settings.admin_token ?? env.CREDPROXY_ADMIN_TOKEN;
  if (given) return given;
  if (!dataDir) {
    const token = randomBytes(24).toString('base64url');
    log.warn({ admin_token_printed: true }, 'CREDPROXY_ADMIN_TOKEN is not set: generated one for this run (memory store)');
    process.stderr.write(`credproxy admin token (this run only): ${token}\n`);
    return token;
  }
  const path = join(dataDir, 'admin.token');
  const { value, created } = readOrCreateSecret(path, 24);
  if (created) {
    process.stderr.write(`credproxy admin token (saved in ${path}, shown once): ${value}\n`);
  } else {
    log.info({ path }, 'admin token read from the data folder');
  }
  return value;
}

const poolOptions = (config: Config) => ({
  keepAliveTimeout: config.settings.limits.upstream_keep_alive_timeout_ms,
  keepAliveMaxTimeout: 600_000,
  connections: 256,
});

/**
 * Integration hosts (and their token endpoints, verify requests) are the operator's choice:
 * resolved once and the resolved address dialled, without the private-range check. Upstream
 * TLS is verified against `ca` (system roots plus tls.upstream_ca); nothing turns that off.
 */
function upstreamAgent(config: Config, ca: string[] | undefined): Agent {
  return egressAgent({ ...poolOptions(config), chooser: 'operator', timeout: config.settings.limits.upstream_connect_timeout_ms, ca: () => ca });
}

/** Passthrough gets its own pools, whose connector checks every address it dials. */
function passthroughAgent(config: Config, ca: () => string[] | undefined, runtime: () => Runtime): Agent {
  let parsedFor: Config | undefined;
  let allow: ReturnType<typeof parseCidrs> = [];
  const allowPrivate = () => {
    const current = runtime().current.config;
    if (parsedFor !== current) {
      allow = parseCidrs(current.settings.egress.allow_private);
      parsedFor = current;
    }
    return allow;
  };
  return egressAgent({ ...poolOptions(config), chooser: 'client', timeout: config.settings.limits.upstream_connect_timeout_ms, allowPrivate, ca });
}

/** Loads the config, opens the store and listens; what `credproxy start` and the tests run. */
export async function startCredproxy(opts: StartOptions): Promise<RunningCredproxy> {
  const env = opts.env ?? process.env;
  const schemes = new SchemeSet(opts.schemes ?? SCHEMES);
  const config = loadConfig(opts.configDir, { ...opts, schemes: schemes.catalog });
  const log = opts.logger ?? createLogger({ level: config.settings.log.level });
  checkListenPolicy(config.settings, log);
  const tls = createTlsRuntime(config.settings);
  if (tls.ca?.created) log.warn({ ca: tls.ca.certPath }, 'created the local CA for HTTPS interception: clients must trust this certificate');
  const metrics = new Metrics(opts.processMetrics ?? false);
  metrics.setRequestMetrics(config.settings.metrics.requests);
  const opened = await openStore(config.settings, env, log, opts.redis);
  const dataDir = opened.dataDir;
  // Status changes become connection events, whoever writes them (see STATUS_EVENTS).
  const store = observeStore(opened.store, metrics, log, (c) => {
    const type = STATUS_EVENTS[c.status];
    if (type) runtime.events.emit({ type, entity: c.entity, integration: c.integration, label: c.label, status: c.status, reason: c.reason });
  });
  const runtime: Runtime = {
    current: snapshotOf(config, schemes),
    schemes,
    store,
    log,
    agent: upstreamAgent(config, tls.upstreamCa),
    passthrough: passthroughAgent(config, passthroughTrust(tls.ca ? config.settings.tls.ca_dir : undefined, tls.ca?.certPem, tls.upstreamCa), () => runtime),
    tls,
    adminToken: adminTokenFor(config, env, dataDir, log),
    metrics,
    events: new Events({ ...opts.events, settings: () => runtime.current.config.settings.events, log, metrics }),
    ...instanceState(config, store, log, () => runtime.current),
  };
  const reloader = new ConfigReloader(runtime, opts.configDir, { ...opts, env, schemes: schemes.catalog, debounceMs: opts.reloadDebounceMs });
  if (opts.watch) reloader.watch();
  const onHangup = () => void reloader.reload('SIGHUP');
  if (opts.reloadOnSighup) process.on('SIGHUP', onHangup);
  const server = createServer(runtime);
  drainOnClose(server);
  const { host, port } = config.settings.listen;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    // A failed start (port in use, …) must not leave the store file open or the pool alive.
    reloader.close();
    process.off('SIGHUP', onHangup);
    await closeRuntime(runtime);
    throw err;
  }
  const actual = (server.address() as AddressInfo).port;
  if (config.settings.public_url.endsWith(':0')) {
    // Listening on port 0, the default public_url named port 0; OAuth redirect URIs need the real one.
    const settings = Object.freeze({ ...config.settings, public_url: config.settings.public_url.replace(/:0$/, `:${actual}`) });
    runtime.current = snapshotOf(Object.freeze({ ...config, settings }), schemes);
  }
  const shown = host.includes(':') ? `[${host}]` : host;
  const url = `http://${shown}:${actual}`;
  log.info({ url, integrations: [...config.integrations.keys()], store: config.settings.store.replace(/\/\/[^@]*@/, '//…@') }, 'credproxy listening');
  return {
    url,
    port: actual,
    server,
    runtime,
    reload: () => reloader.reload('api'),
    async close() {
      reloader.close();
      process.off('SIGHUP', onHangup);
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        closeTunnels(server);
      });
      await closeRuntime(runtime);
    },
  };
}
