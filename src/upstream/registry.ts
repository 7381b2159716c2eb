import type { Tool } from '@modelcontextprotocol/client';
import type { OAuthManager } from '../auth/oauth-manager.js';
import { type UpstreamConfig, usesOAuth } from '../config/schema.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { CatalogCache } from './catalog-cache.js';
import { ChildGroups, type ChildGroupTracker, reapLeftovers } from './child-groups.js';
import { isWindows } from './child-process.js';
import { HttpUpstreamTransport } from './http-transport.js';
import type { UpstreamSnapshot } from './state.js';
import { StdioTransport } from './stdio-transport.js';
import { type CreateTransport, Upstream, type UpstreamOptions } from './upstream.js';

export interface UpstreamRegistryOptions {
  /** Enabled upstreams, in config order. */
  readonly upstreams: readonly UpstreamConfig[];
  readonly logger: Logger;
  /** Persists every upstream's last good tool list; optional in tests. */
  readonly cache?: CatalogCache | undefined;
  /** Overrides how connections are made (tests inject their own). */
  readonly createTransport?: CreateTransport | undefined;
  /** Tokens for OAuth upstreams (absent: http upstreams connect without OAuth). */
  readonly oauth?: OAuthManager | undefined;
  /**
   * The config dir: every child's process group is recorded there (and watched by a watchdog
   * process) so that a killed daemon's children are killed too. Absent: no records, no watchdog.
   */
  readonly stateDir?: string | undefined;
  /** Longest stdout line of a stdio child (default 64 MiB). */
  readonly maxStdoutLineBytes?: number | undefined;
  /** Longest stderr line of a stdio child that is logged (default 64 KiB). */
  readonly maxStderrLineBytes?: number | undefined;
  /** Passed to every Upstream. */
  readonly upstreamDefaults: Pick<
    UpstreamOptions,
    'pingIntervalMs' | 'connectTimeoutMs' | 'stableAfterMs' | 'backoff' | 'readyWaitMs'
  >;
}

/** Owns every Upstream: creates them from config, starts and stops them, persists their tools. */
export class UpstreamRegistry {
  private readonly upstreams = new Map<string, Upstream>();
  private readonly listeners = new Set<(snapshot: UpstreamSnapshot) => void>();
  private readonly groups: ChildGroups | undefined;

  constructor(private readonly options: UpstreamRegistryOptions) {
    if (options.stateDir !== undefined && !isWindows)
      this.groups = new ChildGroups({ configDir: options.stateDir, log: options.logger });
    const createTransport =
      options.createTransport ??
      defaultTransportFactory({
        oauth: options.oauth,
        logger: options.logger,
        groups: this.groups,
        maxStdoutLineBytes: options.maxStdoutLineBytes,
        maxStderrLineBytes: options.maxStderrLineBytes,
      });
    for (const config of options.upstreams) {
      const upstream = new Upstream({
        ...options.upstreamDefaults,
        config,
        logger: options.logger,
        createTransport,
        cachedTools: options.cache?.get(config.name),
      });
      let lastTools: readonly Tool[] = upstream.snapshot().tools;
      upstream.onSnapshot((snapshot) => {
        if (snapshot.toolsSource === 'live' && snapshot.tools !== lastTools) {
          void options.cache?.save(snapshot.name, snapshot.tools);
        }
        lastTools = snapshot.tools;
        for (const listener of this.listeners) listener(snapshot);
      });
      this.upstreams.set(config.name, upstream);
    }
  }

  /**
   * Before the first start: kills the children that a previous daemon with this config dir left
   * running when it was killed (see child-groups.ts). Never throws.
   */
  async reapLeftovers(): Promise<void> {
    if (!this.groups || this.options.stateDir === undefined) return;
    try {
      await reapLeftovers({ configDir: this.options.stateDir, log: this.options.logger });
    } catch (error) {
      this.options.logger.warn(
        { err: errorMessage(error) },
        'could not clean up children of a previous daemon',
      );
    }
  }

  start(): void {
    for (const upstream of this.upstreams.values()) upstream.start();
  }

  /** Stops every upstream in parallel; resolves when all children are gone. */
  async stop(): Promise<void> {
    await Promise.allSettled([...this.upstreams.values()].map((u) => u.stop()));
    await this.groups?.close();
    await this.options.cache?.flush();
  }

  /**
   * Last resort for an exiting process: SIGKILL every child's process group synchronously, so that
   * nothing outlives the daemon even when it could not shut down in order.
   */
  killAllSync(): void {
    for (const { pid } of this.snapshots()) {
      if (pid === undefined) continue;
      try {
        process.kill(process.platform === 'win32' ? pid : -pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }

  get(name: string): Upstream | undefined {
    return this.upstreams.get(name);
  }

  /** Upstreams in config order. */
  list(): Upstream[] {
    return [...this.upstreams.values()];
  }

  snapshots(): UpstreamSnapshot[] {
    return this.list().map((u) => u.snapshot());
  }

  /** Every snapshot of every upstream; returns the unsubscribe function. */
  onSnapshot(listener: (snapshot: UpstreamSnapshot) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

/** Stdio children for `command` entries; Streamable HTTP (or legacy SSE) for `url` entries. */
export function defaultTransportFactory(deps: {
  oauth?: OAuthManager | undefined;
  logger: Logger;
  groups?: ChildGroupTracker | undefined;
  maxStdoutLineBytes?: number | undefined;
  maxStderrLineBytes?: number | undefined;
}): CreateTransport {
  return (config, hooks) => {
    if (config.kind === 'stdio') {
      return new StdioTransport({
        name: config.name,
        command: config.command,
        args: config.args,
        env: config.env,
        cwd: config.cwd,
        onStderrLine: hooks.onStderrLine,
        onGarbage: hooks.onGarbage,
        onExit: hooks.onExit,
        maxStdoutLineBytes: deps.maxStdoutLineBytes,
        maxStderrLineBytes: deps.maxStderrLineBytes,
        log: deps.logger.child({ upstream: config.name }),
        groups: deps.groups,
      });
    }
    // A configured Authorization header is the whole story: no OAuth on top of a static key.
    const oauth = usesOAuth(config) ? deps.oauth : undefined;
    return new HttpUpstreamTransport({
      config,
      auth: oauth?.provider(config),
      log: deps.logger.child({ upstream: config.name }),
      onInsufficientScope: (scope) => oauth?.noteScope(config.name, scope),
    });
  };
}
