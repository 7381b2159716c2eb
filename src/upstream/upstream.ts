import {
  CLIENT_CAPABILITIES_META_KEY,
  Client,
  LOG_LEVEL_META_KEY,
  type McpSubscription,
  ProtocolError,
  ProtocolErrorCode,
  SdkHttpError,
  type Tool,
  type Transport,
} from '@modelcontextprotocol/client';
import pRetry, { AbortError } from 'p-retry';
import { z } from 'zod';
import { resolveOpRefs } from '../config/op-refs.js';
import { redactSecrets } from '../config/redact.js';
import type { UpstreamConfig } from '../config/schema.js';
import { redactUpstreamConfig, secretValuesOf } from '../config/secrets.js';
import { BridgeError, errorMessage, isBridgeError } from '../errors.js';
import type { Logger } from '../log.js';
import { VERSION } from '../version.js';
import { CallClock } from './call-clock.js';
import { startKeepalive } from './keepalive.js';
import { mcpParamHeaders } from './param-headers.js';
import {
  canTransition,
  isTransient,
  type Listed,
  type UpstreamExitInfo,
  type UpstreamSnapshot,
} from './state.js';
import {
  authError,
  callError,
  closedError,
  errorInfo,
  findBridgeError,
  isRetryable,
  notReadyError,
  startError,
} from './upstream-errors.js';

/** A transport the upstream owns, with the child's pid when there is one. */
export type ManagedTransport = Transport & TransportInfo;

/** What an upstream tells the transport it creates. */
export interface TransportHooks {
  /** A line the child wrote to stderr. */
  readonly onStderrLine: (line: string) => void;
  /** A stdout line that was not JSON-RPC. */
  readonly onGarbage: (line: string) => void;
  /** The child exited. */
  readonly onExit: (exit: { code: number | null; signal: string | null }) => void;
}

export interface TransportInfo {
  /** The child's pid (stdio). */
  readonly pid?: number | undefined;
  /** Which HTTP transport is in use (http). */
  readonly transportKind?: 'streamable-http' | 'sse' | undefined;
  /** The upstream's session id (Streamable HTTP with sessions). */
  readonly sessionId?: string | undefined;
  /** Why the transport ended the connection itself (e.g. UPSTREAM_OUTPUT_TOO_LARGE), if it did. */
  readonly failure?: BridgeError | undefined;
}

export type CreateTransport = (config: UpstreamConfig, hooks: TransportHooks) => ManagedTransport;

export interface BackoffOptions {
  /** Delay before the first retry. */
  readonly minMs: number;
  /** Cap on any delay. */
  readonly maxMs: number;
  /** Growth per failed attempt. */
  readonly factor: number;
}

export interface UpstreamOptions {
  /** The upstream's resolved config. */
  readonly config: UpstreamConfig;
  /** Parent logger; the upstream adds its name. */
  readonly logger: Logger;
  /** Creates one transport per connection attempt. */
  readonly createTransport: CreateTransport;
  /** The last good tool list (from tools-cache.json), served until the upstream is ready. */
  readonly cachedTools?: readonly Tool[] | undefined;
  /** Keepalive ping period; 0 disables. */
  readonly pingIntervalMs: number;
  /** Budget for spawn + handshake + listing. */
  readonly connectTimeoutMs?: number;
  /** A connection that stayed up this long resets the backoff. */
  readonly stableAfterMs?: number;
  readonly backoff?: BackoffOptions;
  /** How long a call waits for a starting upstream before failing. */
  readonly readyWaitMs?: number;
  /** Resolves secret references (`op://`) before each connection; defaults to the 1Password CLI. */
  readonly resolveConfig?: (config: UpstreamConfig) => Promise<UpstreamConfig>;
}

export interface CallOptions {
  /** Cancels the upstream request. */
  readonly signal?: AbortSignal | undefined;
  /** Progress from the upstream, to relay to the caller. */
  readonly onprogress?:
    | ((progress: { progress: number; total?: number; message?: string }) => void)
    | undefined;
  /** Asks the caller's client (elicitation, sampling) on behalf of the upstream. */
  readonly onServerRequest?: ((request: ServerRequest) => Promise<Record<string, unknown>>) | undefined;
  /** Who is calling (the downstream session): calls of one caller share its client. */
  readonly caller?: object | undefined;
  /** A log message the upstream sent while the call was running (already tagged with the upstream). */
  readonly onLog?: ((params: Record<string, unknown>) => void) | undefined;
  /** What the calling client declared; a 2026-07-28 upstream gets it in each request's `_meta`. */
  readonly clientCapabilities?: Record<string, unknown> | undefined;
  /**
   * Sends a notification to the caller's client after the call, if it can (a 2025 session): the
   * `notifications/elicitation/complete` of a URL elicitation it was asked.
   */
  readonly onLaterNotification?:
    | ((notification: { method: string; params: Record<string, unknown> }) => void)
    | undefined;
  /** The log level the caller wants; a 2026-07-28 upstream gets it in the request's `_meta`. */
  readonly logLevel?: string | undefined;
  /**
   * Set for a 2026-07-28 caller. A 2026-07-28 upstream's `input_required` result is then handed
   * back (not fulfilled by the bridge), and the caller's retry fields are forwarded to it.
   */
  readonly inputRequired?: { requestState?: string; inputResponses?: Record<string, unknown> } | undefined;
}

/** A request an upstream sends to its client. */
export interface ServerRequest {
  readonly method: string;
  readonly params?: Record<string, unknown> | undefined;
}

/** Server→client requests the bridge passes on to the client whose call is running. */
const RELAYED_REQUESTS = ['elicitation/create', 'sampling/createMessage', 'roots/list'] as const;

/** Results are passed on untouched: unknown fields must survive, so no spec schema strips them. */
export const PassthroughResultSchema = z.looseObject({});
type PassthroughResult = z.infer<typeof PassthroughResultSchema>;
const PageSchema = z.looseObject({ nextCursor: z.string().optional() });

/** The lists an upstream serves besides tools, with the capability that announces each. */
const LISTS = [
  { method: 'prompts/list', key: 'prompts', capability: 'prompts' },
  { method: 'resources/list', key: 'resources', capability: 'resources' },
  { method: 'resources/templates/list', key: 'resourceTemplates', capability: 'resources' },
] as const;
type ListKey = (typeof LISTS)[number]['key'];

const MAX_TOOL_PAGES = 1000;
/** Rounds of input a 2026-07-28 upstream may ask for in one call of a 2025 caller. */
const MAX_ROUNDS = 10;
/** The longest timer Node allows: the SDK's per-request timeout, which CallClock replaces. */
const NO_SDK_TIMEOUT = 2 ** 31 - 1;
const SESSION_EXPIRED = Symbol('session expired');
const STDERR_TAIL = 20;

/**
 * One configured server: owns its connection and walks the state machine
 * idle → starting → ready ⇄ ping, backoff → starting, failed, needs_auth, stopping → stopped.
 * Every async continuation checks its generation before touching state.
 */
export class Upstream {
  readonly name: string;
  /** false with `"prefix": false`: tools and prompts keep their own names. */
  readonly prefixed: boolean;
  private readonly log: Logger;
  private readonly listeners = new Set<(snapshot: UpstreamSnapshot) => void>();
  private current: UpstreamSnapshot;
  private client: Client | undefined;
  private transport: ManagedTransport | undefined;
  private generation = 0;
  private episodes = 0;
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  private stopKeepalive: () => void = () => {};
  /** The child's last stderr lines, already redacted: they end up in errors, /status and the log. */
  private readonly stderrTail: string[] = [];
  /** This episode's secret values (env, headers, args; `op://` resolved), hidden wherever output is shown. */
  private secrets: readonly string[] = [];
  /** Calls waiting for an answer; a busy server is not pinged. */
  private inFlight = 0;
  private readonly resourceListeners = new Set<(uri: string, params: Record<string, unknown>) => void>();
  /** The callers of the calls in flight: where the upstream's requests and logs go. */
  private readonly callers = new Set<CallOptions>();
  private refreshSeq = 0;
  /** URL elicitations relayed to a client, by id: their completion notice goes to that client. */
  private readonly urlElicitations = new Map<string, NonNullable<CallOptions['onLaterNotification']>>();
  /** Set to end the current connection on purpose: an auth error to surface, or a plain reconnect. */
  private endReason: { generation: number; error?: BridgeError } | undefined;
  /** The auth error that ended a connection: calls cut off by that close report it instead. */
  private authEnded: { generation: number; error: BridgeError } | undefined;
  private wakeRequested = false;
  /** Set after a connect that probed with server/discover failed: later connects skip the probe. */
  private probeFailed = false;
  /** URIs the bridge subscribed to (on a 2026-07-28 upstream they ride on subscriptions/listen). */
  private readonly subscribedUris = new Set<string>();
  /** The open subscriptions/listen stream of a 2026-07-28 upstream. */
  private subscription: McpSubscription | undefined;
  /** The (re)open of that stream in progress: opens run one after another. */
  private listening: Promise<boolean> = Promise.resolve(true);
  private relistenTimer: NodeJS.Timeout | undefined;
  private relistenDelayMs = 0;
  /** Wakes a `failed` or `needs_auth` upstream (after a login). */
  private wake: () => void = () => {};

  constructor(private readonly options: UpstreamOptions) {
    this.name = options.config.name;
    this.prefixed = options.config.prefix !== false;
    this.log = options.logger.child({ upstream: this.name });
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
  }

  snapshot(): UpstreamSnapshot {
    return this.current;
  }

  /** Subscribes to snapshots; returns the unsubscribe function. */
  onSnapshot(listener: (snapshot: UpstreamSnapshot) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Starts connecting in the background. */
  start(): void {
    if (this.current.state !== 'idle') return;
    this.running = this.run();
  }

  /** Closes the connection and stops retrying. Idempotent; resolves when the child is gone. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      if (this.current.state !== 'stopped') this.update({ state: 'stopping' });
      this.abort.abort(new BridgeError('UPSTREAM_CLOSED', `upstream "${this.name}" is stopping`));
      this.wake();
      this.stopKeepalive();
      try {
        await this.closeConnection();
        await this.running;
      } finally {
        this.update({ state: 'stopped', pid: undefined });
      }
    })();
    return this.stopping;
  }

  /** Calls a tool by its upstream name and returns the upstream's result unchanged. */
  async callTool(
    params: { name: string } & Record<string, unknown>,
    options: CallOptions = {},
  ): Promise<PassthroughResult> {
    return this.request({ method: 'tools/call', params }, options);
  }

  /**
   * Tries again (after a login, or to leave `failed`): a `needs_auth` or `failed` upstream starts
   * connecting at once. Does nothing in other states.
   */
  retryNow(): void {
    this.wakeRequested = true;
    this.wake();
  }

  /** The grant is gone: end the connection and wait in `needs_auth` for a login. */
  requireAuth(error: BridgeError): void {
    if (this.current.state === 'needs_auth' || this.abort.signal.aborted) return;
    this.endReason = { generation: this.generation, error };
    this.authEnded = { generation: this.generation, error };
    void this.closeConnection();
  }

  private async request(
    request: { method: string; params?: Record<string, unknown> },
    options: CallOptions,
  ): Promise<PassthroughResult> {
    const first = await this.requestOnce(request, options, true);
    // The server forgot our session (it restarted): a new session, then the same request once more.
    return first === SESSION_EXPIRED
      ? (this.requestOnce(request, options, false) as Promise<PassthroughResult>)
      : first;
  }

  private async requestOnce(
    request: { method: string; params?: Record<string, unknown> },
    options: CallOptions,
    mayRetry: boolean,
  ): Promise<PassthroughResult | typeof SESSION_EXPIRED> {
    const timeout = this.options.config.callTimeoutMs;
    const client = await this.waitForReady(
      Math.min(timeout, this.options.readyWaitMs ?? 10_000),
      options.signal,
    );
    const generation = this.generation;
    const sessionId = this.transport?.sessionId;
    const modern = client.getProtocolEra() === 'modern';
    const clock = new CallClock(timeout, options.signal);
    const { onprogress, onServerRequest } = options;
    // The caller as registered for the upstream's requests: while one waits for the client, the
    // call's timeout stands still.
    const tracked: CallOptions = {
      ...options,
      onprogress:
        onprogress &&
        ((progress) => {
          clock.restart();
          onprogress(progress);
        }),
      onServerRequest: onServerRequest && ((asked) => clock.pauseWhile(onServerRequest(asked))),
    };
    // The clock times the call; the SDK's own timeout is only a backstop.
    const sdkOptions = {
      signal: clock.signal,
      timeout: NO_SDK_TIMEOUT,
      onprogress: tracked.onprogress,
      ...(modern && request.method === 'tools/call' ? { headers: this.paramHeaders(request.params) } : {}),
    };
    this.inFlight++;
    this.callers.add(tracked);
    try {
      if (!modern)
        return await client.request(legacyRequest(request, options), PassthroughResultSchema, sdkOptions);
      // A 2026-07-28 upstream asks with input_required results. A 2026-07-28 caller gets them as
      // they are; for a 2025 caller the bridge asks that caller (and only it) and sends the call again.
      let params = modernRequest(request, options).params;
      for (let round = 1; ; round++) {
        const result = await client.request({ method: request.method, params }, PassthroughResultSchema, {
          ...sdkOptions,
          allowInputRequired: true,
        });
        if (options.inputRequired !== undefined || result.resultType !== 'input_required') return result;
        if (round > MAX_ROUNDS) {
          throw new ProtocolError(
            ProtocolErrorCode.InternalError,
            `upstream "${this.name}" still asked for input after ${MAX_ROUNDS} rounds of ${request.method}`,
          );
        }
        const inputResponses = await answerInputRequests(result, tracked);
        const requestState = typeof result.requestState === 'string' ? result.requestState : undefined;
        params = modernRequest(request, {
          ...options,
          inputRequired: { inputResponses, ...(requestState !== undefined ? { requestState } : {}) },
        }).params;
      }
    } catch (error) {
      if (this.authEnded?.generation === generation) throw this.authEnded.error;
      const auth = findBridgeError(error, 'NEEDS_AUTH') ?? authError(this.name, error);
      if (isBridgeError(auth, 'NEEDS_AUTH')) this.requireAuth(auth);
      if (auth) throw auth;
      if (mayRetry && sessionId !== undefined && error instanceof SdkHttpError && error.status === 404) {
        this.log.info({ sessionId }, 'upstream session expired (HTTP 404); reconnecting');
        this.reconnect(generation);
        return SESSION_EXPIRED;
      }
      throw callError(this.name, error, request.method, timeout, this.current.lastExit);
    } finally {
      clock.stop();
      this.inFlight--;
      this.callers.delete(tracked);
    }
  }

  /** SEP-2243 `Mcp-Param-*` headers of a tools/call (sent only by HTTP transports). */
  private paramHeaders(params: Record<string, unknown> | undefined): Record<string, string> {
    const tool = this.current.tools.find((t) => t.name === params?.name);
    return tool ? mcpParamHeaders(tool.inputSchema, params?.arguments) : {};
  }

  /** Ends the connection of `generation` (if still current) so that a new one starts at once. */
  private reconnect(generation: number): void {
    if (generation !== this.generation || this.endReason?.generation === generation) return;
    this.endReason = { generation };
    this.client = undefined;
    this.update({ state: 'starting' });
    void this.closeConnection();
  }

  private waitForReady(timeoutMs: number, signal: AbortSignal | undefined): Promise<Client> {
    const ready = () => (this.current.state === 'ready' ? this.client : undefined);
    const now = ready();
    if (now) return Promise.resolve(now);
    if (!isTransient(this.current.state)) return Promise.reject(this.notReadyError());
    return new Promise<Client>((resolve, reject) => {
      const finish = (error?: unknown, client?: Client) => {
        clearTimeout(timer);
        unsubscribe();
        signal?.removeEventListener('abort', onAbort);
        if (client) resolve(client);
        else reject(error);
      };
      const timer = setTimeout(() => finish(this.notReadyError(timeoutMs)), timeoutMs);
      timer.unref();
      const onAbort = () => finish(signal?.reason ?? new Error('aborted'));
      signal?.addEventListener('abort', onAbort, { once: true });
      const unsubscribe = this.onSnapshot((s) => {
        const client = ready();
        if (client) finish(undefined, client);
        else if (!isTransient(s.state)) finish(this.notReadyError());
      });
    });
  }

  /**
   * An upstream's request to its client belongs to the call that is running: with exactly one caller
   * that can answer, it goes there; otherwise it is refused (never broadcast to other clients).
   */
  private relayServerRequest(request: ServerRequest): Promise<Record<string, unknown>> {
    const askers = distinctCallers([...this.callers].filter((c) => c.onServerRequest));
    if (askers.length !== 1) {
      const why =
        askers.length === 0
          ? 'it arrived while no tool call of this server was running, so there is no client to ask'
          : `tool calls of ${askers.length} clients of this server are running, so the bridge cannot tell which client to ask`;
      throw new ProtocolError(
        ProtocolErrorCode.InvalidRequest,
        `mcp-bridge refused ${request.method}: ${why}`,
      );
    }
    const asker = askers[0]!;
    const params = request.params ?? {};
    if (
      request.method === 'elicitation/create' &&
      params.mode === 'url' &&
      typeof params.elicitationId === 'string' &&
      asker.onLaterNotification
    ) {
      this.urlElicitations.set(params.elicitationId, asker.onLaterNotification);
      // Bounded: a server that never completes its elicitations does not grow this forever.
      if (this.urlElicitations.size > 100)
        this.urlElicitations.delete(this.urlElicitations.keys().next().value!);
    }
    return asker.onServerRequest!(request);
  }

  /** The end of a URL elicitation, for the client that was asked (it may come after the call). */
  private relayElicitationComplete(params: Record<string, unknown>): void {
    const id = String(params.elicitationId);
    const notify = this.urlElicitations.get(id);
    this.urlElicitations.delete(id);
    if (notify) notify({ method: 'notifications/elicitation/complete', params });
    else this.log.debug({ elicitationId: id }, 'elicitation/complete for no relayed elicitation; dropped');
  }

  /** Log messages go to the callers of the calls in flight, tagged with the upstream. */
  private relayLog(params: Record<string, unknown>): void {
    const logger = typeof params.logger === 'string' ? `${this.name}/${params.logger}` : this.name;
    const tagged = { ...params, logger };
    const listeners = distinctCallers([...this.callers].filter((c) => c.onLog));
    if (listeners.length === 0) this.log.debug({ message: tagged }, 'upstream log message (no caller)');
    for (const caller of listeners) caller.onLog!(tagged);
  }

  private notReadyError(waitedMs?: number): BridgeError {
    return notReadyError(this.name, this.current.state, this.current.lastError, waitedMs);
  }

  private closedError(when: string): BridgeError {
    return closedError(this.name, when, this.current.lastExit, this.stderrTail.at(-1), this.secrets);
  }

  private async run(): Promise<void> {
    const backoff = this.options.backoff ?? { minMs: 1000, maxMs: 60_000, factor: 2 };
    const signal = this.abort.signal;
    while (!signal.aborted) {
      try {
        // One pRetry run per streak of failures; an episode that was stable returns normally, so
        // the next run starts with a fresh attempt budget.
        await pRetry((attempt) => this.episode(attempt), {
          retries: Number.POSITIVE_INFINITY,
          factor: backoff.factor,
          minTimeout: backoff.minMs,
          maxTimeout: backoff.maxMs,
          randomize: true,
          signal,
          onFailedAttempt: ({ error, attemptNumber }) => {
            if (signal.aborted || !isRetryable(error)) return;
            this.log.warn(
              { attempt: attemptNumber, err: errorMessage(error) },
              'upstream attempt failed; backing off',
            );
            this.update({
              state: 'backoff',
              attempt: attemptNumber,
              lastError: errorInfo(error),
              pid: undefined,
            });
          },
          shouldRetry: ({ error }) => isRetryable(error),
        });
      } catch (error) {
        if (signal.aborted) return;
        const auth = findBridgeError(error, 'NEEDS_AUTH');
        if (auth) {
          this.log.warn({ err: auth.message }, 'upstream needs a login');
          this.update({ state: 'needs_auth', lastError: errorInfo(auth), pid: undefined });
        } else {
          this.log.error({ err: errorMessage(error) }, 'upstream failed; not retrying');
          this.update({ state: 'failed', lastError: errorInfo(error), pid: undefined });
        }
        // Until a login (or a stop) wakes it; a wake-up that came while failing is not lost.
        if (!this.wakeRequested) {
          await new Promise<void>((resolve) => {
            this.wake = resolve;
          });
        }
        this.wake = () => {};
        this.wakeRequested = false;
      }
    }
  }

  /** One connection: spawn, handshake, list, then serve until it drops. */
  private async episode(attempt: number): Promise<void> {
    const signal = this.abort.signal;
    if (signal.aborted) throw new AbortError('stopped');
    const generation = ++this.generation;
    // Set when start-up timed out: the attempt's own continuations must not mark it ready.
    let abandoned = false;
    const isCurrent = () => generation === this.generation && !signal.aborted && !abandoned;
    if (this.episodes++ > 0) this.update({ restarts: this.current.restarts + 1 });
    this.update({ state: 'starting', attempt });
    // `config`, not `upstream`: the child logger already binds `upstream` to the name.
    if (attempt === 1)
      this.log.info({ config: redactUpstreamConfig(this.options.config) }, 'starting upstream');
    this.stderrTail.length = 0;

    let onClosed: () => void = () => {};
    const closed = new Promise<void>((resolve) => {
      onClosed = resolve;
    });
    const config = await (this.options.resolveConfig ?? resolveOpRefs)(this.options.config);
    if (!isCurrent()) throw new AbortError('stopped');
    this.secrets = secretValuesOf(config, this.options.config);
    const transport = this.options.createTransport(config, {
      onStderrLine: (line) => {
        const safe = redactSecrets(line, this.secrets);
        this.stderrTail.push(safe);
        if (this.stderrTail.length > STDERR_TAIL) this.stderrTail.shift();
        this.log.info({ stream: 'stderr' }, safe);
      },
      onGarbage: (line) =>
        this.log.warn(
          // Cut before redacting: a garbage line may be megabytes long (a token spans < 2 KB).
          { line: redactSecrets(line.slice(0, 2000), this.secrets).slice(0, 200) },
          'upstream wrote a non-JSON-RPC line to stdout; ignored',
        ),
      onExit: (exit) => {
        const lastExit: UpstreamExitInfo = { ...exit, at: Date.now() };
        this.log.info({ code: exit.code, signal: exit.signal }, 'upstream process exited');
        if (generation === this.generation) this.update({ lastExit, pid: undefined });
      },
    });
    // "auto" probes with server/discover (the default for HTTP). A stdio child is probed in place,
    // and a legacy child may exit on the probe, so stdio defaults to the initialize handshake; and
    // once a probing connect has failed, later ones skip the probe.
    const negotiate =
      (config.protocol ?? (config.kind === 'http' ? 'auto' : 'legacy')) === 'auto' && !this.probeFailed;
    const client = new Client(
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
    for (const method of RELAYED_REQUESTS) {
      client.setRequestHandler(
        method,
        (request) =>
          this.relayServerRequest({ method, params: request.params as Record<string, unknown> }) as never,
      );
    }
    client.onclose = () => onClosed();
    client.onerror = (error) => this.log.debug({ err: errorMessage(error) }, 'upstream protocol error');
    this.client = undefined;
    this.transport = transport;

    try {
      const connectTimeoutMs = this.options.connectTimeoutMs ?? 30_000;
      await withTimeout(
        (async () => {
          await client.connect(transport, { timeout: connectTimeoutMs, signal });
          if (!isCurrent()) return;
          this.update({ pid: transport.pid, transport: transport.transportKind ?? config.kind });
          client.setNotificationHandler('notifications/tools/list_changed', () =>
            this.refreshTools(client, generation),
          );
          client.setNotificationHandler('notifications/message', (notification) =>
            this.relayLog(notification.params),
          );
          client.setNotificationHandler('notifications/elicitation/complete', (notification) =>
            this.relayElicitationComplete(notification.params),
          );
          for (const method of [
            'notifications/prompts/list_changed',
            'notifications/resources/list_changed',
          ] as const) {
            client.setNotificationHandler(method, () => void this.refreshLists(client, generation));
          }
          client.setNotificationHandler('notifications/resources/updated', (notification) => {
            for (const listener of this.resourceListeners)
              listener(String(notification.params.uri), notification.params);
          });
          const tools = await this.listTools(client);
          const lists = await this.listOthers(client);
          if (!isCurrent()) return;
          const info = client.getServerVersion();
          this.client = client;
          this.update({
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
          this.log.info(
            { tools: tools.length, childPid: transport.pid, era: client.getProtocolEra() },
            'upstream ready',
          );
          if (client.getProtocolEra() === 'modern') void this.listen(client, generation);
          else if (this.subscribedUris.size > 0) void this.resubscribe(client);
        })(),
        closed.then(() => Promise.reject(this.closedError('during start-up'))),
        connectTimeoutMs,
        () =>
          new BridgeError(
            'HANDSHAKE_FAILED',
            `upstream "${this.name}" did not finish start-up within ${connectTimeoutMs} ms`,
          ),
      );
    } catch (error) {
      abandoned = true;
      // Only a stdio child can be killed by the probe; an HTTP server's failure (down, 401) says
      // nothing about its era, and the SDK falls back by itself where the answer says "legacy".
      if (negotiate && config.kind === 'stdio' && client.getProtocolEra() === undefined) {
        this.probeFailed = true;
        this.log.info(
          'start-up failed while probing for the 2026-07-28 revision; the next attempt uses initialize',
        );
      }
      await this.closeConnection(transport);
      if (signal.aborted) throw new AbortError('stopped');
      const reason = this.takeEndReason(generation);
      if (reason?.error) throw reason.error;
      throw (
        transport.failure ??
        startError(this.name, error, this.current.lastExit, this.stderrTail.at(-1), this.secrets)
      );
    }

    const readyAt = Date.now();
    this.stopKeepalive = startKeepalive({
      client,
      intervalMs: this.options.pingIntervalMs,
      isBusy: () => this.inFlight > 0,
      isCurrent: () => generation === this.generation && this.current.state === 'ready',
      onDead: () => void this.closeConnection(transport),
      log: this.log,
    });
    await closed;
    this.stopKeepalive();
    if (generation === this.generation) this.client = undefined;
    // The leader exited on its own: still sweep its process group and close the pipes.
    await this.closeConnection(transport);
    if (signal.aborted) return;
    const reason = this.takeEndReason(generation);
    if (reason?.error) throw reason.error;
    if (reason) return;

    const error = transport.failure ?? this.closedError('while ready');
    this.log.warn({ err: error.message }, 'upstream connection lost');
    this.update({ lastError: errorInfo(error), pid: undefined });
    if (Date.now() - readyAt >= (this.options.stableAfterMs ?? 30_000)) return;
    throw error;
  }

  /** The reason the connection of `generation` was ended on purpose, consumed once. */
  private takeEndReason(generation: number): { error?: BridgeError } | undefined {
    const reason = this.endReason;
    if (reason?.generation !== generation) return undefined;
    this.endReason = undefined;
    return reason;
  }

  /** Every page of tools/list, raw (unknown fields kept). */
  private async listTools(client: Client): Promise<Tool[]> {
    return (await this.listAll(client, 'tools/list', 'tools')) as unknown as Tool[];
  }

  /** Prompts, resources and templates, for the lists the server's capabilities announce. */
  private async listOthers(client: Client): Promise<Partial<Record<ListKey, Listed[]>>> {
    const capabilities = (client.getServerCapabilities() ?? {}) as Record<string, unknown>;
    const lists: Partial<Record<ListKey, Listed[]>> = {};
    for (const { method, key, capability } of LISTS) {
      if (!capabilities[capability]) continue;
      try {
        lists[key] = await this.listAll(client, method, key);
      } catch (error) {
        // A server may announce resources but not implement templates: one list failing is no reason
        // to refuse the others.
        this.log.warn({ method, err: errorMessage(error) }, 'could not list; serving it as empty');
        lists[key] = [];
      }
    }
    return lists;
  }

  /** Every page of a list method, raw (unknown fields kept). */
  private async listAll(client: Client, method: string, key: string): Promise<Listed[]> {
    const items: Listed[] = [];
    const seen = new Set<string>();
    let cursor: string | undefined;
    for (let page = 0; page < MAX_TOOL_PAGES; page++) {
      const result = await client.request(
        { method, params: cursor === undefined ? {} : { cursor } },
        PageSchema,
        { timeout: this.options.connectTimeoutMs ?? 30_000 },
      );
      const pageItems = (result as Record<string, unknown>)[key];
      if (!Array.isArray(pageItems)) throw new Error(`${method} answered without "${key}"`);
      items.push(...(pageItems as Listed[]));
      cursor = result.nextCursor;
      if (cursor === undefined) return items;
      if (seen.has(cursor)) break;
      seen.add(cursor);
    }
    this.log.warn({ method, pages: MAX_TOOL_PAGES }, 'pagination did not end; keeping what was listed');
    return items;
  }

  private async refreshLists(client: Client, generation: number): Promise<void> {
    const lists = await this.listOthers(client);
    if (generation !== this.generation || this.current.state !== 'ready') return;
    this.log.info('upstream prompt or resource list changed');
    this.update(lists);
  }

  /** Subscribes to `notifications/resources/updated` of this upstream. */
  onResourceUpdated(listener: (uri: string, params: Record<string, unknown>) => void): () => void {
    this.resourceListeners.add(listener);
    return () => this.resourceListeners.delete(listener);
  }

  /** Any other request (prompts/get, resources/read, completion/complete…), answered unchanged. */
  async forward(
    method: string,
    params: Record<string, unknown>,
    options: CallOptions = {},
  ): Promise<PassthroughResult> {
    if (
      method !== 'resources/subscribe' &&
      method !== 'resources/unsubscribe' &&
      method !== 'logging/setLevel'
    ) {
      return this.request({ method, params }, options);
    }
    const client = await this.waitForReady(
      Math.min(this.options.config.callTimeoutMs, this.options.readyWaitMs ?? 10_000),
      options.signal,
    );
    const modern = client.getProtocolEra() === 'modern';
    // The 2026-07-28 revision has no logging/setLevel: the level goes with each request.
    if (method === 'logging/setLevel') return modern ? {} : this.request({ method, params }, options);
    const uri = String(params.uri);
    const subscribe = method === 'resources/subscribe';
    if (!modern) {
      const result = await this.request({ method, params }, options);
      if (subscribe) this.subscribedUris.add(uri);
      else this.subscribedUris.delete(uri);
      return result;
    }
    // … nor resources/subscribe: the URIs go in the filter of the subscriptions/listen stream.
    if (subscribe) this.subscribedUris.add(uri);
    else this.subscribedUris.delete(uri);
    if (!(await this.listen(client, this.generation)) && subscribe) {
      this.subscribedUris.delete(uri);
      throw new ProtocolError(
        ProtocolErrorCode.InternalError,
        `upstream "${this.name}" did not open a subscriptions/listen stream for ${uri}; try again`,
      );
    }
    return {};
  }

  /**
   * On a 2026-07-28 upstream, change notifications arrive only on a subscriptions/listen stream:
   * one is kept open for the lists the server announces and the subscribed URIs. Opens run one at
   * a time (the last one sees the latest URIs); a new stream replaces the old once it is up. A
   * stream the server drops, or one that could not be opened, is retried with backoff, and the
   * lists are read again once it is back (changes may have been missed meanwhile).
   */
  private listen(client: Client, generation: number): Promise<boolean> {
    const opened = this.listening.then(() => this.openListen(client, generation));
    this.listening = opened.catch(() => false);
    return opened;
  }

  private async openListen(client: Client, generation: number): Promise<boolean> {
    const current = () => generation === this.generation && this.client === client;
    if (!current()) return false;
    const caps = (client.getServerCapabilities() ?? {}) as Record<
      string,
      { listChanged?: boolean; subscribe?: boolean } | undefined
    >;
    const filter = {
      ...(caps.tools?.listChanged ? { toolsListChanged: true } : {}),
      ...(caps.prompts?.listChanged ? { promptsListChanged: true } : {}),
      ...(caps.resources?.listChanged ? { resourcesListChanged: true } : {}),
      ...(caps.resources?.subscribe && this.subscribedUris.size > 0
        ? { resourceSubscriptions: [...this.subscribedUris] }
        : {}),
    };
    if (Object.keys(filter).length === 0) {
      void this.subscription?.close();
      this.subscription = undefined;
      return true;
    }
    let subscription: McpSubscription;
    try {
      subscription = await client.listen(filter);
    } catch (error) {
      this.log.warn({ err: errorMessage(error) }, 'could not open subscriptions/listen; retrying');
      this.relistenLater(client, generation);
      return false;
    }
    if (!current()) {
      void subscription.close();
      return false;
    }
    const previous = this.subscription;
    this.subscription = subscription;
    void previous?.close();
    void subscription.closed.then((how) => {
      if (how !== 'remote' || this.subscription !== subscription || !current()) return;
      this.log.info('the upstream ended its subscriptions/listen stream; opening it again');
      this.relistenLater(client, generation);
    });
    return true;
  }

  private relistenLater(client: Client, generation: number): void {
    if (this.relistenTimer) return;
    this.relistenDelayMs = Math.min(30_000, this.relistenDelayMs * 2 || 1000);
    this.relistenTimer = setTimeout(async () => {
      this.relistenTimer = undefined;
      if (generation !== this.generation || this.client !== client) return;
      if (!(await this.listen(client, generation))) return;
      this.relistenDelayMs = 0;
      void this.refreshTools(client, generation);
      void this.refreshLists(client, generation).catch(() => {});
    }, this.relistenDelayMs);
    this.relistenTimer.unref();
  }

  /** A 2025-era upstream forgot its subscriptions when it restarted: subscribe again. */
  private async resubscribe(client: Client): Promise<void> {
    for (const uri of this.subscribedUris) {
      await client
        .request({ method: 'resources/subscribe', params: { uri } }, PassthroughResultSchema)
        .catch((error: unknown) =>
          this.log.warn({ uri, err: errorMessage(error) }, 'could not subscribe again after a restart'),
        );
    }
  }

  private async refreshTools(client: Client, generation: number): Promise<void> {
    const seq = ++this.refreshSeq;
    try {
      const tools = await this.listTools(client);
      // A newer refresh started meanwhile: its answer is at least as fresh as this one.
      if (seq !== this.refreshSeq || generation !== this.generation || this.current.state !== 'ready') return;
      this.log.info({ tools: tools.length }, 'upstream tool list changed');
      this.update({ tools, toolsSource: 'live' });
    } catch (error) {
      this.log.warn({ err: errorMessage(error) }, 'could not refresh the tool list after list_changed');
    }
  }

  private async closeConnection(transport: ManagedTransport | undefined = this.transport): Promise<void> {
    if (!transport) return;
    try {
      await transport.close();
    } catch (error) {
      this.log.debug({ err: errorMessage(error) }, 'error while closing the upstream transport');
    }
  }

  private update(patch: Partial<Omit<UpstreamSnapshot, 'name' | 'kind' | 'since'>>): void {
    const previous = this.current;
    if (patch.state && patch.state !== previous.state) {
      if (!canTransition(previous.state, patch.state)) {
        this.log.debug({ from: previous.state, to: patch.state }, 'ignored an invalid state transition');
        return;
      }
      this.log.debug({ from: previous.state, to: patch.state }, 'upstream state');
    }
    const since = patch.state && patch.state !== previous.state ? Date.now() : previous.since;
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

/**
 * A request to a 2026-07-28 upstream: the caller's capabilities in `_meta` (so the upstream asks
 * only for what the client can answer), and the caller's retry fields of a multi-round-trip flow.
 */
function modernRequest(
  request: { method: string; params?: Record<string, unknown> },
  options: CallOptions,
): { method: string; params?: Record<string, unknown> } {
  const { clientCapabilities, logLevel, inputRequired } = options;
  const params = { ...request.params };
  params._meta = {
    ...(params._meta as Record<string, unknown> | undefined),
    ...(clientCapabilities ? { [CLIENT_CAPABILITIES_META_KEY]: clientCapabilities } : {}),
    ...(logLevel ? { [LOG_LEVEL_META_KEY]: logLevel } : {}),
  };
  if (inputRequired?.requestState !== undefined) params.requestState = inputRequired.requestState;
  if (inputRequired?.inputResponses !== undefined) params.inputResponses = inputRequired.inputResponses;
  return { method: request.method, params };
}

/** Asks the caller for every request of an upstream's `input_required` result, all at once. */
async function answerInputRequests(
  result: Record<string, unknown>,
  caller: CallOptions,
): Promise<Record<string, unknown>> {
  const requests = Object.entries((result.inputRequests ?? {}) as Record<string, ServerRequest>);
  const answers = await Promise.all(
    requests.map(async ([key, asked]) => {
      if (!caller.onServerRequest) {
        throw new ProtocolError(
          ProtocolErrorCode.InvalidRequest,
          `mcp-bridge cannot pass on ${asked.method}: this request has no client to ask`,
        );
      }
      return [key, await caller.onServerRequest({ method: asked.method, params: asked.params })] as const;
    }),
  );
  return Object.fromEntries(answers);
}

/** A 2025-era upstream has no multi-round-trip flow: a state it never issued is refused. */
function legacyRequest(
  request: { method: string; params?: Record<string, unknown> },
  options: CallOptions,
): { method: string; params?: Record<string, unknown> } {
  if (options.inputRequired?.requestState !== undefined) {
    throw new ProtocolError(
      ProtocolErrorCode.InvalidParams,
      'requestState was not issued for this request (mcp-bridge has no such round in progress); send the request again without requestState',
    );
  }
  return request;
}

/** One entry per calling client: several calls of the same session count once. */
function distinctCallers(callers: CallOptions[]): CallOptions[] {
  const seen = new Map<object, CallOptions>();
  for (const caller of callers)
    if (!seen.has(caller.caller ?? caller)) seen.set(caller.caller ?? caller, caller);
  return [...seen.values()];
}
