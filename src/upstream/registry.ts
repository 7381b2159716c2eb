import type { Tool } from '@modelcontextprotocol/client';
import type { UpstreamConfig } from '../config/schema.js';
import { BridgeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { CatalogCache } from './catalog-cache.js';
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
  readonly createTransport?: CreateTransport;
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

  constructor(private readonly options: UpstreamRegistryOptions) {
    const createTransport = options.createTransport ?? createDefaultTransport;
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

  start(): void {
    for (const upstream of this.upstreams.values()) upstream.start();
  }

  /** Stops every upstream in parallel; resolves when all children are gone. */
  async stop(): Promise<void> {
    await Promise.allSettled([...this.upstreams.values()].map((u) => u.stop()));
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

/** Stdio children for `command` entries; remote `url` entries are not supported yet. */
export const createDefaultTransport: CreateTransport = (config, hooks) => {
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
    });
  }
  throw new BridgeError(
    'UPSTREAM_UNSUPPORTED',
    `upstream "${config.name}": remote (url) upstreams are not supported by this version of mcp-bridge yet`,
    { details: { upstream: config.name, url: config.url } },
  );
};
