import type { OAuthManager } from '../auth/oauth-manager.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { AppliedUpstreams, UpstreamRegistry } from '../upstream/registry.js';
import { diffUpstreams, restartNeeded } from './reload.js';
import { type BridgeConfig, usesOAuth } from './schema.js';
import { watchConfigFile } from './watch.js';

export interface ReloadOutcome {
  /** false: the new config did not load, nothing changed. */
  readonly ok: boolean;
  readonly error?: string;
  readonly applied?: AppliedUpstreams;
  readonly restartNeeded: readonly string[];
}

export interface ConfigReloaderOptions {
  /** The config the daemon started with: the yardstick for restart-only keys. */
  readonly started: BridgeConfig;
  /** Reads the config again exactly as at start (same `--config`, same environment). */
  readonly load: () => BridgeConfig;
  readonly registry: UpstreamRegistry;
  readonly oauth: OAuthManager;
  readonly logger: Logger;
}

/**
 * Applies a changed config to a running daemon (SIGHUP, or a save seen by the watcher). Reloads run
 * one at a time; requests that arrive while one runs collapse into a single next one, which reads
 * the file as it is by then (50 saves in a row cost at most two reloads).
 */
export class ConfigReloader {
  private currentConfig: BridgeConfig;
  private running: Promise<ReloadOutcome> | undefined;
  private queued: Promise<ReloadOutcome> | undefined;
  private closed = false;
  private stopWatching: (() => void) | undefined;

  constructor(private readonly options: ConfigReloaderOptions) {
    this.currentConfig = options.started;
  }

  /** The config the upstreams run with now. */
  get current(): BridgeConfig {
    return this.currentConfig;
  }

  /** Reloads whenever the config file changes (debounced). */
  watch(debounceMs?: number): void {
    this.stopWatching ??= watchConfigFile({
      file: this.options.started.file,
      logger: this.options.logger,
      debounceMs,
      onChange: () => void this.reload('file changed'),
    });
  }

  reload(reason: string): Promise<ReloadOutcome> {
    if (this.closed)
      return Promise.resolve({ ok: false, error: 'the daemon is stopping', restartNeeded: [] });
    if (!this.running) {
      this.running = this.once(reason).finally(() => {
        this.running = undefined;
      });
      return this.running;
    }
    this.queued ??= this.running.then(() => {
      this.queued = undefined;
      return this.reload(reason);
    });
    return this.queued;
  }

  /** Stops watching; resolves when a reload in progress is done. */
  async close(): Promise<void> {
    this.closed = true;
    this.stopWatching?.();
    await this.running?.catch(() => {});
  }

  private async once(reason: string): Promise<ReloadOutcome> {
    const { registry, logger, started } = this.options;
    let next: BridgeConfig;
    try {
      next = this.options.load();
    } catch (error) {
      // loadConfig's message names the file, the key and what was expected (never a value).
      const message = errorMessage(error);
      registry.reloadStatus = { ...registry.reloadStatus, configError: { message, at: Date.now() } };
      logger.error(
        { config: started.file, reason },
        `config not reloaded; the running config stays: ${message}`,
      );
      return { ok: false, error: message, restartNeeded: registry.reloadStatus.restartNeeded };
    }
    const needed = restartNeeded(started, next);
    registry.reloadStatus = { configError: undefined, restartNeeded: needed };
    if (needed.length > 0) {
      logger.warn(
        { config: next.file, keys: needed },
        `restart needed: ${needed.join(', ')} changed; these apply only when the daemon restarts`,
      );
    }
    const diff = diffUpstreams(this.currentConfig.upstreams, next.upstreams);
    this.currentConfig = next;
    if (diff.changed.length + diff.added.length + diff.removed.length === 0) {
      logger.info({ reason, unchanged: diff.unchanged.length }, 'config reloaded; no upstream changed');
      return { ok: true, restartNeeded: needed };
    }
    const needsLogin = [...diff.changed, ...diff.added].filter(usesOAuth);
    if (needsLogin.length > 0) await this.options.oauth.load(needsLogin);
    const applied = await registry.applyUpstreams(next.upstreams, diff);
    logger.info({ reason, ...applied }, 'config reloaded');
    return { ok: true, applied, restartNeeded: needed };
  }
}
