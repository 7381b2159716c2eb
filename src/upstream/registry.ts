import type { Tool } from '@modelcontextprotocol/client';
import type { OAuthManager } from '../auth/oauth-manager.js';
import type { UpstreamDiff } from '../config/reload.js';
import type { UpstreamConfig } from '../config/schema.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { CatalogCache } from './catalog-cache.js';
import { ChildGroups, reapLeftovers } from './child-groups.js';
import { isWindows } from './child-process.js';
import type { UpstreamSnapshot } from './state.js';
import { defaultTransportFactory } from './transport-factory.js';
import { type CreateTransport, Upstream, type UpstreamOptions } from './upstream.js';

export { defaultTransportFactory } from './transport-factory.js';

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

/** What `applyUpstreams` did, by upstream name. */
export interface AppliedUpstreams {
  readonly unchanged: readonly string[];
  readonly restarted: readonly string[];
  readonly stopped: readonly string[];
  readonly started: readonly string[];
}

/** How long a reload waits for its new upstreams to connect before it reports the lists changed. */
const RELOAD_SETTLE_MS = 10_000;

/** Owns every Upstream: creates them from config, starts and stops them, persists their tools. */
export class UpstreamRegistry {
  private upstreams = new Map<string, Upstream>();
  private readonly unsubscribes = new Map<Upstream, () => void>();
  private readonly listeners = new Set<(snapshot: UpstreamSnapshot) => void>();
  private readonly resourceListeners = new Set<
    (upstream: string, uri: string, params: Record<string, unknown>) => void
  >();
  private readonly batchListeners = new Set<(phase: 'begin' | 'end') => void>();
  private readonly groups: ChildGroups | undefined;
  private readonly createTransport: CreateTransport;
  private started = false;
  private stopped = false;
  /** The last config reload's outcome, for /status (set by the daemon). */
  reloadStatus: ReloadStatus = { configError: undefined, restartNeeded: [] };

  constructor(private readonly options: UpstreamRegistryOptions) {
    if (options.stateDir !== undefined && !isWindows)
      this.groups = new ChildGroups({ configDir: options.stateDir, log: options.logger });
    this.createTransport =
      options.createTransport ??
      defaultTransportFactory({
        oauth: options.oauth,
        logger: options.logger,
        groups: this.groups,
        maxStdoutLineBytes: options.maxStdoutLineBytes,
        maxStderrLineBytes: options.maxStderrLineBytes,
      });
    for (const config of options.upstreams) {
      this.upstreams.set(config.name, this.create(config));
    }
  }

  private create(config: UpstreamConfig): Upstream {
    const { options } = this;
    const upstream = new Upstream({
      ...options.upstreamDefaults,
      config,
      logger: options.logger,
      createTransport: this.createTransport,
      cachedTools: options.cache?.get(config.name),
    });
    let lastTools: readonly Tool[] = upstream.snapshot().tools;
    const unsubscribe = upstream.onSnapshot((snapshot) => {
      // A replaced upstream's last snapshots (stopping, stopped) must not reach the catalog as if
      // they were its successor's.
      if (this.upstreams.get(snapshot.name) !== upstream) return;
      if (snapshot.toolsSource === 'live' && snapshot.tools !== lastTools) {
        void options.cache?.save(snapshot.name, snapshot.tools);
      }
      lastTools = snapshot.tools;
      this.publish(snapshot);
    });
    const stopUpdates = upstream.onResourceUpdated((uri, params) => {
      if (this.upstreams.get(config.name) !== upstream) return;
      for (const listener of this.resourceListeners) listener(config.name, uri, params);
    });
    this.unsubscribes.set(upstream, () => {
      unsubscribe();
      stopUpdates();
    });
    return upstream;
  }

  /**
   * `notifications/resources/updated` of every upstream, those a reload adds included; returns the
   * unsubscribe function.
   */
  onResourceUpdated(
    listener: (upstream: string, uri: string, params: Record<string, unknown>) => void,
  ): () => void {
    this.resourceListeners.add(listener);
    return () => this.resourceListeners.delete(listener);
  }

  private publish(snapshot: UpstreamSnapshot): void {
    for (const listener of this.listeners) listener(snapshot);
  }

  /**
   * Brings the running upstreams in line with a new config: an unchanged entry (deep-equal) keeps
   * its Upstream (same child, session and calls in flight), a changed one is stopped and started
   * anew, a removed one stopped, a new one started. Listeners see the whole change as one batch,
   * which ends once the new upstreams have connected (or failed, or RELOAD_SETTLE_MS passed), so
   * clients hear `list_changed` once. Callers serialize calls.
   */
  async applyUpstreams(next: readonly UpstreamConfig[], diff: UpstreamDiff): Promise<AppliedUpstreams> {
    if (this.stopped) return { unchanged: [], restarted: [], stopped: [], started: [] };
    for (const listener of this.batchListeners) listener('begin');
    try {
      const restarted = diff.changed.map((u) => u.name);
      const leaving = [...diff.removed, ...restarted].flatMap((name) => {
        const upstream = this.upstreams.get(name);
        return upstream ? [upstream] : [];
      });
      // Stopped before anything new starts: a restarted server never runs twice at once.
      await Promise.allSettled(leaving.map((u) => u.stop()));
      const order = new Map<string, Upstream>();
      const fresh: Upstream[] = [];
      const replaced = new Set(restarted);
      for (const config of next) {
        const kept = replaced.has(config.name) ? undefined : this.upstreams.get(config.name);
        if (kept) {
          order.set(config.name, kept);
          continue;
        }
        const upstream = this.create(config);
        order.set(config.name, upstream);
        fresh.push(upstream);
      }
      for (const upstream of leaving) {
        this.unsubscribes.get(upstream)?.();
        this.unsubscribes.delete(upstream);
      }
      this.upstreams = order;
      // The catalog rebuilds from list(): the removed ones' tools go with this snapshot.
      for (const upstream of leaving) this.publish(upstream.snapshot());
      if (this.started && !this.stopped) for (const upstream of fresh) upstream.start();
      for (const upstream of fresh) this.publish(upstream.snapshot());
      await settle(fresh, RELOAD_SETTLE_MS);
      return {
        unchanged: diff.unchanged,
        restarted,
        stopped: diff.removed,
        started: diff.added.map((u) => u.name),
      };
    } finally {
      for (const listener of this.batchListeners) listener('end');
    }
  }

  /** `begin` and `end` around a reload's changes; returns the unsubscribe function. */
  onBatch(listener: (phase: 'begin' | 'end') => void): () => void {
    this.batchListeners.add(listener);
    return () => this.batchListeners.delete(listener);
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
    this.started = true;
    for (const upstream of this.upstreams.values()) upstream.start();
  }

  /** Stops every upstream in parallel; resolves when all children are gone. */
  async stop(): Promise<void> {
    this.stopped = true;
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

/** Whether the last config reload worked, and what it could not apply. */
export interface ReloadStatus {
  /** Why the newest config was not applied (the old one keeps running); cleared by a good one. */
  readonly configError: { readonly message: string; readonly at: number } | undefined;
  /** Keys that changed but take effect only after a restart of the daemon. */
  readonly restartNeeded: readonly string[];
}

/** Resolves once every upstream has left `idle`/`starting` (connected, failed or backing off), or after `ms`. */
function settle(upstreams: readonly Upstream[], ms: number): Promise<void> {
  const pending = (u: Upstream) => ['idle', 'starting'].includes(u.snapshot().state);
  if (!upstreams.some(pending)) return Promise.resolve();
  return new Promise((resolve) => {
    const unsubscribes: (() => void)[] = [];
    const done = () => {
      clearTimeout(timer);
      for (const unsubscribe of unsubscribes) unsubscribe();
      resolve();
    };
    const timer = setTimeout(done, ms);
    timer.unref();
    for (const upstream of upstreams) {
      unsubscribes.push(upstream.onSnapshot(() => !upstreams.some(pending) && done()));
    }
  });
}
