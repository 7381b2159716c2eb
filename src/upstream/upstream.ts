import { BridgeError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { CallRouter } from './call-router.js';
import { CallPath } from './calls.js';
import { Connector } from './connection.js';
import type { Generation } from './generation.js';
import { ListRefresher } from './lists.js';
import { checkTransition, type SnapshotPatch, type UpstreamSnapshot } from './state.js';
import { Subscriptions } from './subscriptions.js';
import { Supervisor } from './supervisor.js';
import { errorInfo, findBridgeError } from './upstream-errors.js';
import type { CallOptions, PassthroughResult, UpstreamOptions } from './upstream-types.js';

export type {
  BackoffOptions,
  CallerInfo,
  CallOptions,
  CreateTransport,
  ManagedTransport,
  ServerRequest,
  TransportHooks,
  TransportInfo,
  UpstreamOptions,
} from './upstream-types.js';
export { PassthroughResultSchema } from './upstream-types.js';

/**
 * One configured server: owns its connection and walks the state machine
 * idle → starting → ready ⇄ ping, backoff → starting, failed, needs_auth, stopping → stopped.
 * The pieces: Supervisor (retries, generations), Connector (one connection episode), CallPath
 * (requests), CallRouter (the upstream's requests and logs to callers), Subscriptions, ListRefresher.
 */
export class Upstream {
  readonly name: string;
  /** false with `"prefix": false`: tools and prompts keep their own names. */
  readonly prefixed: boolean;
  private readonly log: Logger;
  private readonly listeners = new Set<(snapshot: UpstreamSnapshot) => void>();
  private readonly resourceListeners = new Set<(uri: string, params: Record<string, unknown>) => void>();
  private current: UpstreamSnapshot;
  private readonly supervisor: Supervisor;
  private readonly connector: Connector;
  private readonly calls: CallPath;
  private readonly subscriptions: Subscriptions;
  private stopping: Promise<void> | undefined;

  constructor(options: UpstreamOptions) {
    this.name = options.config.name;
    this.prefixed = options.config.prefix !== false;
    const log = options.logger.child({ upstream: this.name });
    this.log = log;
    const cached = options.cachedTools ?? [];
    this.current = {
      name: this.name,
      kind: options.config.kind,
      state: 'idle',
      since: Date.now(),
      tools: cached,
      toolsSource: options.cachedTools ? 'cache' : 'none',
      pid: undefined,
      restarts: 0,
      attempt: 0,
      lastError: undefined,
      lastExit: undefined,
      serverInfo: undefined,
    };
    const { name } = this;
    const snapshot = () => this.current;
    const update = (patch: SnapshotPatch) => this.update(patch);
    const router = new CallRouter(name, log);
    const lists = new ListRefresher({ log, timeoutMs: options.connectTimeoutMs ?? 30_000, snapshot, update });
    this.subscriptions = new Subscriptions({
      name,
      log,
      onReopened: (live) => {
        void lists.refreshTools(live);
        void lists.refreshLists(live).catch(() => {});
      },
    });
    this.connector = new Connector({
      name,
      options,
      log,
      router,
      lists,
      subscriptions: this.subscriptions,
      snapshot,
      update,
      latest: () => this.supervisor.current,
      resourceUpdated: (uri, params) => {
        for (const listener of this.resourceListeners) listener(uri, params);
      },
    });
    this.supervisor = new Supervisor({
      episode: (context) => this.connector.run(context),
      backoff: options.backoff,
      stableAfterMs: options.stableAfterMs,
      onBackoff: (attempt, error) => {
        log.warn({ attempt, err: errorMessage(error) }, 'upstream attempt failed; backing off');
        update({ state: 'backoff', attempt, lastError: errorInfo(error), pid: undefined });
      },
      onGiveUp: (error) => {
        const auth = findBridgeError(error, 'NEEDS_AUTH');
        if (auth) {
          log.warn({ err: auth.message }, 'upstream needs a login');
          update({ state: 'needs_auth', lastError: errorInfo(auth), pid: undefined });
        } else {
          log.error({ err: errorMessage(error) }, 'upstream failed; not retrying');
          update({ state: 'failed', lastError: errorInfo(error), pid: undefined });
        }
      },
    });
    this.calls = new CallPath({
      name,
      options,
      log,
      router,
      snapshot,
      onSnapshot: (listener) => this.onSnapshot(listener),
      live: () => this.connector.live,
      latestEnded: () => this.supervisor.current?.ended,
      requireAuth: (error) => this.requireAuth(error),
      reconnect: (generation) => this.reconnect(generation),
    });
  }

  snapshot(): UpstreamSnapshot {
    return this.current;
  }

  /** Subscribes to snapshots; returns the unsubscribe function. */
  onSnapshot(listener: (snapshot: UpstreamSnapshot) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Subscribes to `notifications/resources/updated` of this upstream. */
  onResourceUpdated(listener: (uri: string, params: Record<string, unknown>) => void): () => void {
    this.resourceListeners.add(listener);
    return () => this.resourceListeners.delete(listener);
  }

  /** Starts connecting in the background. */
  start(): void {
    if (this.current.state !== 'idle') return;
    this.supervisor.start();
  }

  /** Closes the connection and stops retrying. Idempotent; resolves when the child is gone. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      if (this.current.state !== 'stopped') this.update({ state: 'stopping' });
      const done = this.supervisor.stop(
        new BridgeError('UPSTREAM_CLOSED', `upstream "${this.name}" is stopping`),
      );
      try {
        await this.connector.close();
        await done;
      } finally {
        this.update({ state: 'stopped', pid: undefined });
      }
    })();
    return this.stopping;
  }

  /** Calls a tool by its upstream name and returns the upstream's result unchanged. */
  callTool(
    params: { name: string } & Record<string, unknown>,
    options: CallOptions = {},
  ): Promise<PassthroughResult> {
    return this.calls.request({ method: 'tools/call', params }, options);
  }

  /** Any other request (prompts/get, resources/read, completion/complete…), answered unchanged. */
  async forward(
    method: string,
    params: Record<string, unknown>,
    options: CallOptions = {},
  ): Promise<PassthroughResult> {
    const send = () => this.calls.request({ method, params }, options);
    if (
      method !== 'resources/subscribe' &&
      method !== 'resources/unsubscribe' &&
      method !== 'logging/setLevel'
    ) {
      return send();
    }
    const live = await this.calls.waitForReady(options.signal);
    // The 2026-07-28 revision has no logging/setLevel: the level goes with each request.
    if (method === 'logging/setLevel') return live.client.getProtocolEra() === 'modern' ? {} : send();
    return this.subscriptions.change(method === 'resources/subscribe', String(params.uri), live, send);
  }

  /**
   * Tries again (after a login, or to leave `failed`): a `needs_auth` or `failed` upstream starts
   * connecting at once. Does nothing in other states.
   */
  retryNow(): void {
    this.supervisor.retryNow();
  }

  /**
   * "Reconnect now" (the status page): a ready connection is closed and made again at once, a
   * `failed` or `needs_auth` one tries again. False while it is connecting or backing off anyway.
   */
  reconnectNow(): boolean {
    const { state } = this.current;
    if (state === 'failed' || state === 'needs_auth') {
      this.retryNow();
      return true;
    }
    const generation = this.supervisor.current;
    if (state !== 'ready' || !generation?.live) return false;
    this.reconnect(generation);
    return true;
  }

  /** The grant is gone: end the connection and wait in `needs_auth` for a login. */
  requireAuth(error: BridgeError): void {
    if (this.current.state === 'needs_auth' || this.supervisor.stopped) return;
    this.supervisor.invalidate({ kind: 'auth', error });
  }

  /** Ends the connection of `generation` (if still live) so that a new one starts at once. */
  private reconnect(generation: Generation): void {
    if (!this.supervisor.invalidate({ kind: 'reconnect' }, generation)) return;
    this.update({ state: 'starting' });
  }

  private update(patch: SnapshotPatch): void {
    const previous = this.current;
    const moves = patch.state !== undefined && patch.state !== previous.state;
    if (moves) {
      if (!checkTransition(previous.state, patch.state!, this.log)) return;
      this.log.debug({ from: previous.state, to: patch.state }, 'upstream state');
    }
    const since = moves ? Date.now() : previous.since;
    this.current = Object.freeze({ ...previous, ...patch, since });
    for (const listener of this.listeners) {
      try {
        listener(this.current);
      } catch (error) {
        this.log.error({ err: errorMessage(error) }, 'a snapshot listener failed');
      }
    }
  }
}
