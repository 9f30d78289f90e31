import { existsSync, watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Metrics } from './metrics.js';
import { swapAudit } from './audit/record.js';
import { openProxyProblem } from './proxy/client-auth.js';
import { snapshotOf, type Runtime } from './runtime.js';
import { changedKeys, RESTART_ONLY, withValuesOf } from './config/apply.js';
import { ConfigError, loadConfig, type LoadOptions } from './config/load.js';
import type { Config, IntegrationConfig } from './config/types.js';

export interface ReloadOutcome {
  ok: boolean;
  /** `file:line: message` for a config that does not validate */
  problems?: string[];
  added?: string[];
  removed?: string[];
  changed?: string[];
  /** restart-only settings that changed in the files and were kept at their running value */
  restartNeeded?: string[];
}

export interface ReloaderOptions extends LoadOptions {
  /** quiet time after the last file event before reloading; editors write in bursts */
  debounceMs?: number;
  /** called after every reload attempt (tests, metrics) */
  onReload?: (outcome: ReloadOutcome) => void;
}

/** What makes two versions of an integration the same for the reload log (secrets are compared as hashes, never logged). */
function fingerprint(i: IntegrationConfig): string {
  return JSON.stringify([i.hosts.map((h) => h.source), i.paths, i.upstream, i.params, i.schemes.map((s) => s.fingerprint), i.inject, i.refresh_on]);
}

/**
 * Hot reload: watches the config folder and integrations/ (fs.watch on the folders, so
 * editors' write-to-temp-and-rename saves are seen), debounces, reloads, and swaps
 * `rt.current` whole. A request holds the snapshot it started with, so it finishes with that
 * config; a config that does not validate is logged with every file:line problem and the
 * last good one stays live.
 */
export class ConfigReloader {
  private watchers = new Map<string, FSWatcher>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly log: Logger;
  private readonly metrics: Metrics;

  constructor(
    private readonly rt: Runtime,
    private readonly dir: string,
    private readonly opts: ReloaderOptions = {},
  ) {
    this.log = rt.log;
    this.metrics = rt.metrics;
  }

  /** Starts watching; reloads on its own from then on. */
  watch(): this {
    this.watchFolder(this.dir);
    this.watchIntegrations();
    return this;
  }

  /** Loads the folder now and swaps it in when it validates (SIGHUP, tests, file events). */
  reload(trigger: string): ReloadOutcome {
    const outcome = this.load(trigger);
    this.metrics.reloads.inc({ outcome: outcome.ok ? 'ok' : 'invalid' });
    // What the dashboard shows of the config's health: this instance's last attempt.
    this.rt.lastReload = { at: Date.now(), trigger, ok: outcome.ok, problems: outcome.problems ?? [] };
    this.opts.onReload?.(outcome);
    return outcome;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
  }

  private load(trigger: string): ReloadOutcome {
    const old = this.rt.current.config;
    let next: Config;
    try {
      next = loadConfig(this.dir, { ...this.opts, schemes: this.rt.schemes.catalog });
    } catch (err) {
      const problems = err instanceof ConfigError ? err.problems.map((p) => `${p.file}:${p.line}: ${p.message}`) : [(err as Error).message];
      this.log.error({ trigger, problems }, `config reload failed; the last good config stays live:\n${problems.join('\n')}`);
      return { ok: false, problems };
    }
    // Settings read once at start (src/config/apply.ts): a change keeps the running value and says a restart is needed.
    const restartNeeded = changedKeys(old.settings, next.settings, RESTART_ONLY);
    if (restartNeeded.length > 0) {
      next = Object.freeze({ ...next, settings: Object.freeze(withValuesOf(next.settings, old.settings, RESTART_ONLY)) });
      this.log.warn({ trigger, settings: restartNeeded }, `config changed ${restartNeeded.join(', ')}: restart credproxy to apply; the running values are kept until then`);
    }
    // `listen` and allow_unauthenticated keep their running values; `clients` is live, and
    // dropping it must not turn a proxy on a public address into an open one.
    const open = openProxyProblem(next.settings);
    if (open) {
      const problems = [`credproxy.yaml: a proxy listening on ${open}`];
      this.log.error({ trigger, problems }, `config reload refused; the last good config stays live:\n${problems.join('\n')}`);
      return { ok: false, problems };
    }
    if (next.settings.public_url.endsWith(':0') && old.settings.public_url !== next.settings.public_url) {
      // A public_url derived from `listen` port 0: the running one names the port actually bound.
      next = Object.freeze({ ...next, settings: Object.freeze({ ...next.settings, public_url: old.settings.public_url }) });
    }
    if (next.settings.log.level !== old.settings.log.level) this.rt.log.level = next.settings.log.level;

    const added = [...next.integrations.keys()].filter((n) => !old.integrations.has(n));
    const removed = [...old.integrations.keys()].filter((n) => !next.integrations.has(n));
    const changed = [...next.integrations.values()]
      .filter((i) => {
        const before = old.integrations.get(i.name);
        return before !== undefined && fingerprint(before) !== fingerprint(i);
      })
      .map((i) => i.name);
    if (added.length + removed.length + changed.length === 0 && JSON.stringify(next.settings) === JSON.stringify(old.settings)) {
      // Editors touch files without changing them (saves with no edit): no news at info. An
      // operator who asked (SIGHUP) gets an answer.
      this.log[trigger === 'file change' ? 'debug' : 'info']({ trigger, integrations: [...next.integrations.keys()] }, 'config unchanged');
      return { ok: true, added, removed, changed, restartNeeded };
    }
    // One assignment: requests that already read the old snapshot keep it to their end.
    // Schemes whose definition did not change are carried over, minted tokens and all.
    this.rt.current = snapshotOf(next, this.rt.schemes);
    if (changedKeys(old.settings, next.settings, ['audit.enabled', 'audit.file', 'audit.max_bytes', 'audit.keep']).length > 0) swapAudit(this.rt, next.settings.audit);
    if (next.settings.metrics.requests !== old.settings.metrics.requests) {
      this.metrics.setRequestMetrics(next.settings.metrics.requests);
      this.log.info(
        next.settings.metrics.requests
          ? 'per-request metrics turned on by the reloaded settings: they count from zero'
          : 'per-request metrics turned off by the reloaded settings (metrics.requests: false): they are left out of /metrics',
      );
    }
    this.log.info({ trigger, integrations: [...next.integrations.keys()], added, removed, changed }, 'config reloaded');
    return { ok: true, added, removed, changed, restartNeeded };
  }

  private schedule(): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.watchIntegrations();
      this.reload('file change');
    }, this.opts.debounceMs ?? 300);
  }

  private watchFolder(path: string): void {
    if (this.watchers.has(path)) return;
    try {
      const w = watch(path, { persistent: false }, (_event, name) => {
        if (name && !isConfigFileName(name)) return;
        this.schedule();
      });
      w.on('error', (err) => {
        // The folder went away (deleted, unmounted): stop watching it; a later event on the
        // parent may bring integrations/ back.
        this.log.warn({ path, err: err.message }, 'stopped watching a config folder');
        w.close();
        this.watchers.delete(path);
        this.schedule();
      });
      this.watchers.set(path, w);
    } catch (err) {
      this.log.warn({ path, err: (err as Error).message }, 'cannot watch a config folder; use SIGHUP to reload');
    }
  }

  /**
   * integrations/ may be deleted, created or replaced after start, and a watch on a deleted
   * folder stays silent forever: attach a fresh watch before every reload.
   */
  private watchIntegrations(): void {
    const path = join(this.dir, 'integrations');
    this.watchers.get(path)?.close();
    this.watchers.delete(path);
    if (existsSync(path)) this.watchFolder(path);
  }
}

/** Only what loadConfig reads (*.yaml, *.yml) and integrations/ itself matter; editors' swap and backup files do not. */
export function isConfigFileName(name: string): boolean {
  return /\.ya?ml$/.test(name) || name === 'integrations';
}
