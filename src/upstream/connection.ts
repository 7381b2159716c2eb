import { Client } from '@modelcontextprotocol/client';
import { AbortError } from 'p-retry';
import { resolveOpRefs } from '../config/op-refs.js';
import { redactSecrets } from '../config/redact.js';
import type { UpstreamConfig } from '../config/schema.js';
import { redactUpstreamConfig, secretValuesOf } from '../config/secrets.js';
import { BridgeError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { VERSION } from '../version.js';
import { type CallRouter, RELAYED_REQUESTS } from './call-router.js';
import type { Generation } from './generation.js';
import { startKeepalive } from './keepalive.js';
import { type ListRefresher, listOthers, listTools } from './lists.js';
import type { SnapshotPatch, UpstreamExitInfo, UpstreamSnapshot } from './state.js';
import type { Subscriptions } from './subscriptions.js';
import type { EpisodeContext } from './supervisor.js';
import { closedError, errorInfo, startError } from './upstream-errors.js';
import type { ManagedTransport, TransportHooks, UpstreamOptions } from './upstream-types.js';

/** A ready connection: calls, subscriptions and refreshes use it while its generation lives. */
export interface LiveConnection {
  readonly client: Client;
  readonly transport: ManagedTransport;
  readonly generation: Generation;
}

export interface ConnectorHost {
  readonly name: string;
  readonly options: UpstreamOptions;
  readonly log: Logger;
  readonly router: CallRouter;
  readonly lists: ListRefresher;
  readonly subscriptions: Subscriptions;
  snapshot(): UpstreamSnapshot;
  update(patch: SnapshotPatch): void;
  /** The newest generation: only its child's exit is recorded. */
  latest(): Generation | undefined;
  /** `notifications/resources/updated` of the upstream. */
  resourceUpdated(uri: string, params: Record<string, unknown>): void;
}

const STDERR_TAIL = 20;

/**
 * Makes the connections of one upstream, one episode at a time: resolve secrets, create the
 * transport, connect, list, publish `ready`, then serve until the connection drops.
 */
export class Connector {
  /** The child's last stderr lines, already redacted: they end up in errors, /status and the log. */
  private readonly stderrTail: string[] = [];
  /** This episode's secret values (env, headers, args; `op://` resolved), hidden wherever output is shown. */
  private secrets: readonly string[] = [];
  /** Set after a connect that probed with server/discover failed: later connects skip the probe. */
  private probeFailed = false;
  private episodes = 0;
  private transport: ManagedTransport | undefined;
  private ready: LiveConnection | undefined;
  private readonly closing = new WeakMap<ManagedTransport, Promise<void>>();

  constructor(private readonly host: ConnectorHost) {}

  /** The ready connection, until its generation ends. */
  get live(): LiveConnection | undefined {
    return this.ready;
  }

  /** Closes the newest transport; resolves when it is closed (the child gone). */
  close(): Promise<void> {
    return this.transport ? this.closeTransport(this.transport) : Promise.resolve();
  }

  /** One connection: spawn, handshake, list, then serve until it drops. */
  async run({ attempt, generation, ready }: EpisodeContext): Promise<void> {
    const { host } = this;
    const { options, log, name } = host;
    if (this.episodes++ > 0) host.update({ restarts: host.snapshot().restarts + 1 });
    host.update({ state: 'starting', attempt });
    // `config`, not `upstream`: the child logger already binds `upstream` to the name.
    if (attempt === 1) log.info({ config: redactUpstreamConfig(options.config) }, 'starting upstream');
    this.stderrTail.length = 0;
    const config = await (options.resolveConfig ?? resolveOpRefs)(options.config);
    if (!generation.live) throw this.endedError(generation);
    this.secrets = secretValuesOf(config, options.config);
    const transport = options.createTransport(config, this.hooks(generation));
    this.transport = transport;
    generation.onEnd(() => void this.closeTransport(transport));
    // "auto" probes with server/discover (the default for HTTP). A stdio child is probed in place,
    // and a legacy child may exit on the probe, so stdio defaults to the initialize handshake; and
    // once a probing connect has failed, later ones skip the probe.
    const negotiate =
      (config.protocol ?? (config.kind === 'http' ? 'auto' : 'legacy')) === 'auto' && !this.probeFailed;
    const client = newClient(config, negotiate);
    for (const method of RELAYED_REQUESTS) {
      client.setRequestHandler(
        method,
        (request) =>
          host.router.serverRequest({ method, params: request.params as Record<string, unknown> }) as never,
      );
    }
    let onClosed: () => void = () => {};
    const closed = new Promise<void>((resolve) => {
      onClosed = resolve;
    });
    client.onclose = () => onClosed();
    client.onerror = (error) => log.debug({ err: errorMessage(error) }, 'upstream protocol error');
    const live: LiveConnection = { client, transport, generation };

    const connectTimeoutMs = options.connectTimeoutMs ?? 30_000;
    try {
      await withTimeout(
        this.startUp(live, config, connectTimeoutMs),
        closed.then(() => Promise.reject(this.closedError('during start-up'))),
        connectTimeoutMs,
        () =>
          new BridgeError(
            'HANDSHAKE_FAILED',
            `upstream "${name}" did not finish start-up within ${connectTimeoutMs} ms`,
          ),
      );
    } catch (error) {
      // The attempt's own continuations must not mark it ready.
      generation.end({ kind: 'failed' });
      // Only a stdio child can be killed by the probe; an HTTP server's failure (down, 401) says
      // nothing about its era, and the SDK falls back by itself where the answer says "legacy".
      if (negotiate && config.kind === 'stdio' && client.getProtocolEra() === undefined) {
        this.probeFailed = true;
        log.info(
          'start-up failed while probing for the 2026-07-28 revision; the next attempt uses initialize',
        );
      }
      await this.closeTransport(transport);
      const ended = generation.ended;
      if (ended?.kind === 'stopped' || ended?.kind === 'auth') throw this.endedError(generation);
      throw (
        transport.failure ??
        startError(name, error, host.snapshot().lastExit, this.stderrTail.at(-1), this.secrets)
      );
    }

    ready();
    const stopKeepalive = startKeepalive({
      client,
      intervalMs: options.pingIntervalMs,
      isBusy: () => host.router.busy,
      isCurrent: () => generation.live && host.snapshot().state === 'ready',
      onDead: () => void this.closeTransport(transport),
      log,
    });
    generation.onEnd(stopKeepalive);
    await closed;
    generation.end({ kind: 'closed' });
    // The leader exited on its own: still sweep its process group and close the pipes.
    await this.closeTransport(transport);
    const ended = generation.ended;
    if (ended?.kind === 'stopped' || ended?.kind === 'reconnect') return;
    if (ended?.kind === 'auth') throw ended.error;
    const error = transport.failure ?? this.closedError('while ready');
    log.warn({ err: error.message }, 'upstream connection lost');
    host.update({ lastError: errorInfo(error), pid: undefined });
    throw error;
  }

  /** Handshake, listing, `ready`; stops early (leaving the close to the caller) once the generation ends. */
  private async startUp(live: LiveConnection, config: UpstreamConfig, timeoutMs: number): Promise<void> {
    const { host } = this;
    const { client, transport, generation } = live;
    await client.connect(transport, { timeout: timeoutMs, signal: generation.signal });
    if (!generation.live) return;
    host.update({ pid: transport.pid, transport: transport.transportKind ?? config.kind });
    this.handleNotifications(live);
    const tools = await listTools(client, timeoutMs, host.log);
    const lists = await listOthers(client, timeoutMs, host.log);
    if (!generation.live) return;
    const info = client.getServerVersion();
    this.ready = live;
    generation.onEnd(() => {
      if (this.ready === live) this.ready = undefined;
    });
    host.update({
      state: 'ready',
      tools,
      toolsSource: 'live',
      ...lists,
      capabilities: client.getServerCapabilities() as Record<string, unknown> | undefined,
      instructions: client.getInstructions(),
      attempt: 0,
      serverInfo: info ? { name: info.name, version: info.version } : undefined,
      protocolVersion: client.getNegotiatedProtocolVersion(),
    });
    host.log.info(
      { tools: tools.length, childPid: transport.pid, era: client.getProtocolEra() },
      'upstream ready',
    );
    host.subscriptions.connected(live);
  }

  private handleNotifications(live: LiveConnection): void {
    const { client } = live;
    const { router, lists } = this.host;
    client.setNotificationHandler('notifications/tools/list_changed', () => lists.refreshTools(live));
    client.setNotificationHandler('notifications/message', (n) => router.logMessage(n.params));
    client.setNotificationHandler('notifications/elicitation/complete', (n) =>
      router.elicitationComplete(n.params),
    );
    for (const method of [
      'notifications/prompts/list_changed',
      'notifications/resources/list_changed',
    ] as const) {
      client.setNotificationHandler(method, () => void lists.refreshLists(live));
    }
    client.setNotificationHandler('notifications/resources/updated', (n) =>
      this.host.resourceUpdated(String(n.params.uri), n.params),
    );
  }

  private hooks(generation: Generation): TransportHooks {
    const { log } = this.host;
    return {
      onStderrLine: (line) => {
        const safe = redactSecrets(line, this.secrets);
        this.stderrTail.push(safe);
        if (this.stderrTail.length > STDERR_TAIL) this.stderrTail.shift();
        log.info({ stream: 'stderr' }, safe);
      },
      onGarbage: (line) =>
        log.warn(
          // Cut before redacting: a garbage line may be megabytes long (a token spans < 2 KB).
          { line: redactSecrets(line.slice(0, 2000), this.secrets).slice(0, 200) },
          'upstream wrote a non-JSON-RPC line to stdout; ignored',
        ),
      onExit: (exit) => {
        const lastExit: UpstreamExitInfo = { ...exit, at: Date.now() };
        log.info({ code: exit.code, signal: exit.signal }, 'upstream process exited');
        // Also after a stop or a failed start-up: the errors of that generation quote the exit.
        if (this.host.latest() === generation) this.host.update({ lastExit, pid: undefined });
      },
    };
  }

  /** A stopped generation ends retrying (AbortError); a lost grant ends it with its error. */
  private endedError(generation: Generation): Error {
    const ended = generation.ended;
    return ended?.kind === 'auth' ? ended.error : new AbortError('stopped');
  }

  private closedError(when: string): BridgeError {
    const { name } = this.host;
    return closedError(name, when, this.host.snapshot().lastExit, this.stderrTail.at(-1), this.secrets);
  }

  /** Once per transport: a second close (stop, then the episode's own) waits for the first. */
  private closeTransport(transport: ManagedTransport): Promise<void> {
    let closing = this.closing.get(transport);
    if (!closing) {
      // async: a close() that throws at once is caught like one that rejects.
      closing = (async () => transport.close())().catch((error: unknown) => {
        this.host.log.debug({ err: errorMessage(error) }, 'error while closing the upstream transport');
      });
      this.closing.set(transport, closing);
    }
    return closing;
  }
}

function newClient(config: UpstreamConfig, negotiate: boolean): Client {
  return new Client(
    { name: 'mcp-bridge', version: VERSION },
    {
      // Elicitation, sampling and roots requests are passed on to the client whose call is running.
      capabilities: { elicitation: { form: {}, url: {} }, sampling: {}, roots: {} },
      ...(negotiate
        ? {
            versionNegotiation: {
              mode: 'auto' as const,
              ...(config.kind === 'stdio' ? { probe: { timeoutMs: 10_000 } } : {}),
            },
          }
        : {}),
    },
  );
}

async function withTimeout<T>(
  work: Promise<T>,
  closed: Promise<never>,
  ms: number,
  onTimeout: () => Error,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
    timer.unref();
  });
  closed.catch(() => {});
  try {
    return await Promise.race([work, closed, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
