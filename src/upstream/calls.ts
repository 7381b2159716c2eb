import {
  CLIENT_CAPABILITIES_META_KEY,
  LOG_LEVEL_META_KEY,
  ProtocolError,
  ProtocolErrorCode,
  SdkHttpError,
} from '@modelcontextprotocol/client';
import { type BridgeError, isBridgeError } from '../errors.js';
import type { Logger } from '../log.js';
import { CallClock } from './call-clock.js';
import type { CallRouter } from './call-router.js';
import type { LiveConnection } from './connection.js';
import { DirectRequests } from './direct-requests.js';
import type { Ended, Generation } from './generation.js';
import { mcpParamHeaders } from './param-headers.js';
import { isTransient, type UpstreamSnapshot } from './state.js';
import { authError, callError, findBridgeError, notReadyError } from './upstream-errors.js';
import {
  type CallOptions,
  type PassthroughResult,
  PassthroughResultSchema,
  type ServerRequest,
  type UpstreamOptions,
} from './upstream-types.js';

type Request = { method: string; params?: Record<string, unknown> };

export interface CallHost {
  readonly name: string;
  readonly options: UpstreamOptions;
  readonly log: Logger;
  readonly router: CallRouter;
  snapshot(): UpstreamSnapshot;
  onSnapshot(listener: (snapshot: UpstreamSnapshot) => void): () => void;
  /** The ready connection, if there is one. */
  live(): LiveConnection | undefined;
  /** Why the newest connection ended, if it has. */
  latestEnded(): Ended | undefined;
  /** A call found the grant gone. */
  requireAuth(error: BridgeError): void;
  /** A call found its HTTP session forgotten: end that connection so that a new one starts at once. */
  reconnect(generation: Generation): void;
}

/** Rounds of input a 2026-07-28 upstream may ask for in one call of a 2025 caller. */
const MAX_ROUNDS = 10;
/** The longest timer Node allows: the SDK's per-request timeout, which CallClock replaces. */
const NO_SDK_TIMEOUT = 2 ** 31 - 1;
const SESSION_EXPIRED = Symbol('session expired');

/** Requests to one upstream on behalf of a caller: waiting for it, timing them, mapping their errors. */
export class CallPath {
  constructor(private readonly host: CallHost) {}

  async request(request: Request, options: CallOptions): Promise<PassthroughResult> {
    const first = await this.requestOnce(request, options, true);
    // The server forgot our session (it restarted): a new session, then the same request once more.
    return first === SESSION_EXPIRED
      ? (this.requestOnce(request, options, false) as Promise<PassthroughResult>)
      : first;
  }

  /** The ready connection; a starting upstream is waited for (readyWaitMs, at most the call timeout). */
  waitForReady(signal: AbortSignal | undefined): Promise<LiveConnection> {
    const { host } = this;
    const timeoutMs = Math.min(host.options.config.callTimeoutMs, host.options.readyWaitMs ?? 10_000);
    const ready = () => (host.snapshot().state === 'ready' ? host.live() : undefined);
    const now = ready();
    if (now) return Promise.resolve(now);
    if (!isTransient(host.snapshot().state)) return Promise.reject(this.notReady());
    return new Promise<LiveConnection>((resolve, reject) => {
      const finish = (error?: unknown, live?: LiveConnection) => {
        clearTimeout(timer);
        unsubscribe();
        signal?.removeEventListener('abort', onAbort);
        if (live) resolve(live);
        else reject(error);
      };
      const timer = setTimeout(() => finish(this.notReady(timeoutMs)), timeoutMs);
      timer.unref();
      const onAbort = () => finish(signal?.reason ?? new Error('aborted'));
      signal?.addEventListener('abort', onAbort, { once: true });
      const unsubscribe = host.onSnapshot((s) => {
        const live = ready();
        if (live) finish(undefined, live);
        else if (!isTransient(s.state)) finish(this.notReady());
      });
    });
  }

  private async requestOnce(
    request: Request,
    options: CallOptions,
    mayRetry: boolean,
  ): Promise<PassthroughResult | typeof SESSION_EXPIRED> {
    const { host } = this;
    const timeout = host.options.config.callTimeoutMs;
    const { client, transport, generation } = await this.waitForReady(options.signal);
    const sessionId = transport.sessionId;
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
    const untrack = host.router.track(tracked);
    try {
      if (!modern) {
        const legacy = legacyRequest(request, options);
        // The hot path of a stdio child: straight onto its transport (see direct-requests.ts).
        const direct =
          host.options.config.kind === 'stdio' ? DirectRequests.of(transport, client) : undefined;
        if (direct) return await direct.request(legacy.method, legacy.params, sdkOptions);
        return await client.request(legacy, PassthroughResultSchema, sdkOptions);
      }
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
            `upstream "${host.name}" still asked for input after ${MAX_ROUNDS} rounds of ${request.method}`,
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
      // Cut off by the close of a connection that lost its grant: that is the error to report.
      if (generation.authError) throw generation.authError;
      const auth = findBridgeError(error, 'NEEDS_AUTH') ?? authError(host.name, error);
      if (isBridgeError(auth, 'NEEDS_AUTH')) host.requireAuth(auth);
      if (auth) throw auth;
      if (mayRetry && sessionId !== undefined && error instanceof SdkHttpError && error.status === 404) {
        host.log.info({ sessionId }, 'upstream session expired (HTTP 404); reconnecting');
        host.reconnect(generation);
        return SESSION_EXPIRED;
      }
      throw callError(host.name, error, request.method, timeout, host.snapshot().lastExit);
    } finally {
      clock.stop();
      untrack();
    }
  }

  /** SEP-2243 `Mcp-Param-*` headers of a tools/call (sent only by HTTP transports). */
  private paramHeaders(params: Record<string, unknown> | undefined): Record<string, string> {
    const tool = this.host.snapshot().tools.find((t) => t.name === params?.name);
    return tool ? mcpParamHeaders(tool.inputSchema, params?.arguments) : {};
  }

  private notReady(waitedMs?: number): BridgeError {
    const { state, lastError } = this.host.snapshot();
    // A connection that lost its grant still shows `ready` until it has closed: its calls report
    // the login it needs, as calls it cut off do.
    const ended = this.host.latestEnded();
    if (state === 'ready' && ended?.kind === 'auth') return ended.error;
    return notReadyError(this.host.name, state, lastError, waitedMs);
  }
}

/**
 * A request to a 2026-07-28 upstream: the caller's capabilities in `_meta` (so the upstream asks
 * only for what the client can answer), and the caller's retry fields of a multi-round-trip flow.
 */
function modernRequest(request: Request, options: CallOptions): Request {
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
function legacyRequest(request: Request, options: CallOptions): Request {
  if (options.inputRequired?.requestState !== undefined) {
    throw new ProtocolError(
      ProtocolErrorCode.InvalidParams,
      'requestState was not issued for this request (mcp-bridge has no such round in progress); send the request again without requestState',
    );
  }
  return request;
}
