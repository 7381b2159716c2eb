import type { ServerResponse } from 'node:http';
import {
  ProtocolError,
  ProtocolErrorCode,
  SdkError,
  SdkErrorCode,
  type ServerContext,
} from '@modelcontextprotocol/server';
import { isJsonObject as isObject } from '../json-object.js';
import { AnswerStream } from './answer-stream.js';
import type { SessionEventStore } from './event-store.js';
import { servedToolResult } from './tool-result.js';

type Id = string | number;
type Json = Record<string, unknown>;

/** What the SDK's 2025 server answers by default for a server→client request (DEFAULT_REQUEST_TIMEOUT_MSEC). */
const SERVER_REQUEST_TIMEOUT_MS = 60_000;
/** Keys of `_meta` that belong to the 2026-07-28 envelope: such a request takes the SDK path. */
const ENVELOPE_PREFIX = 'io.modelcontextprotocol/';

/** The reason a call is cancelled with when its client goes away (the upstream is told it as text). */
const CLIENT_GONE = new Error('the client closed the request');
/** How long a resumable stream waits for its client to come back (the event store keeps 60 s). */
const RESUME_WINDOW_MS = 60_000;
/** Protocol revisions whose clients can resume a stream (the SDK sends priming events from these on). */
const RESUMABLE_FROM = '2025-11-25';

const isId = (value: unknown): value is Id => typeof value === 'string' || Number.isSafeInteger(value);
const MESSAGE_KEYS = new Set(['jsonrpc', 'id', 'method', 'params']);

/**
 * A `tools/call` this path serves exactly as the SDK server would: one request (no batch) whose
 * params have the shape CallToolRequestSchema accepts without change. Anything else (a bad shape
 * the SDK must reject with its own message, a 2026-07-28 envelope) is left to the SDK.
 */
export function fastToolCall(message: unknown): { id: Id; params: Json } | undefined {
  if (!isObject(message) || message.jsonrpc !== '2.0' || message.method !== 'tools/call') return undefined;
  // The SDK's JSONRPCMessageSchema is strict: no other keys, integer ids.
  for (const key in message) if (!MESSAGE_KEYS.has(key)) return undefined;
  const { id, params } = message;
  if (!isId(id) || !isObject(params) || typeof params.name !== 'string') return undefined;
  if (params.arguments !== undefined && !isObject(params.arguments)) return undefined;
  const meta = params._meta;
  if (meta !== undefined) {
    if (!isObject(meta)) return undefined;
    if (meta.progressToken !== undefined && !isId(meta.progressToken)) return undefined;
    if (Object.keys(meta).some((key) => key.startsWith(ENVELOPE_PREFIX))) return undefined;
  }
  return { id, params };
}

/** The response to a call whose handler returned `result`, as the SDK server would send it. */
function answerTo(id: Id, result: Json): Json {
  try {
    return { jsonrpc: '2.0', id, result: servedToolResult(result) };
  } catch (error) {
    return { jsonrpc: '2.0', id, error: errorBody(error) };
  }
}

/** The error body the SDK server sends for a handler's throw (its 2025 codec maps ResourceNotFound to InvalidParams). */
function errorBody(error: unknown): Json {
  const { code, message, data } = (error ?? {}) as { code?: unknown; message?: unknown; data?: unknown };
  const thrown = Number.isSafeInteger(code) ? (code as number) : ProtocolErrorCode.InternalError;
  return {
    code: thrown === ProtocolErrorCode.ResourceNotFound ? ProtocolErrorCode.InvalidParams : thrown,
    message: typeof message === 'string' ? message : 'Internal error',
    ...(data !== undefined ? { data } : {}),
  };
}

interface Pending {
  resolve(result: Json): void;
  reject(error: unknown): void;
}

/** Runs one call on behalf of the session, with the SDK-shaped context it would have been given. */
export type RunCall = (params: Json, ctx: ServerContext) => Promise<unknown>;

/**
 * The hot path of a 2025 session's `tools/call`: no web Request/Response, no SDK server in the way.
 * The answer is `application/json` when the result comes first (within a second), and the SDK's
 * event stream as soon as anything must go out before it (progress, a log message, a request to
 * the client), so what the client receives is what the SDK path would send. The session's other
 * traffic keeps the SDK transport; this class also owns the answers and cancellations that name
 * the requests it sent or serves, since the SDK server knows nothing of them.
 */
export class FastCalls {
  private readonly running = new Map<Id, { controller: AbortController; stream: AnswerStream }>();
  private readonly asked = new Map<string, Pending>();
  private nextAsk = 0;
  private ended = false;
  /** Resumable streams by id, until their client took the answer or the resume window closed. */
  private readonly streams = new Map<string, { stream: AnswerStream; attached(res: ServerResponse): void }>();
  private nextStream = 0;

  constructor(
    private readonly sessionId: string,
    private readonly run: RunCall,
    /** Given (tunnelled sessions), streams of clients that can resume get ids and are kept. */
    private readonly events?: SessionEventStore,
  ) {}

  /** Ended with its session: a body read after that must not start a call. */
  get closed(): boolean {
    return this.ended;
  }

  /**
   * A POST body that took the SDK path (a batch, a chunked or compressed body…) less the answers
   * and cancellations this class owns, which the SDK server would drop; undefined when nothing is
   * left for it.
   */
  withoutOwned(body: unknown): unknown {
    if (!Array.isArray(body)) return this.take(body) ? undefined : body;
    const rest = body.filter((message) => !this.take(message));
    if (rest.length === body.length) return body;
    return rest.length > 0 ? rest : undefined;
  }

  /** Whether `message` is an answer or a cancellation this class owns; settles it if so. */
  take(message: unknown): boolean {
    if (!isObject(message) || message.jsonrpc !== '2.0') return false;
    if (message.method === undefined && typeof message.id === 'string' && this.asked.has(message.id)) {
      // Settling removes it from `asked`; errors are made as the SDK's server makes them.
      const pending = this.asked.get(message.id) as Pending;
      if (isObject(message.error)) {
        const { code, message: text, data } = message.error;
        pending.reject(ProtocolError.fromError(Number(code), String(text), data));
      } else if (isObject(message.result)) pending.resolve(message.result);
      else pending.reject(new SdkError(SdkErrorCode.InvalidResult, 'Invalid result: not an object'));
      return true;
    }
    if (message.method === 'notifications/cancelled' && isObject(message.params)) {
      const call = isId(message.params.requestId) ? this.running.get(message.params.requestId) : undefined;
      if (!call) return false;
      call.controller.abort(message.params.reason);
      return true;
    }
    return false;
  }

  /**
   * Serves the call, writing its answer to `res`. `protocolVersion` (the request's header) decides
   * whether its stream can be resumed, as the SDK transport decides whether to prime one.
   */
  serve(call: { id: Id; params: Json }, res: ServerResponse, protocolVersion?: string): void {
    const controller = new AbortController();
    const streamId =
      this.events && protocolVersion && protocolVersion >= RESUMABLE_FROM
        ? `fast-${this.nextStream++}`
        : undefined;
    const stream = new AnswerStream(
      res,
      this.sessionId,
      streamId && this.events ? { events: this.events, streamId } : undefined,
    );
    this.running.set(call.id, { controller, stream });
    let settled = false;
    const settle = () => {
      settled = true;
      if (this.running.get(call.id)?.controller === controller) this.running.delete(call.id);
    };
    let giveUp: NodeJS.Timeout | undefined;
    const forget = () => {
      clearTimeout(giveUp);
      if (streamId) this.streams.delete(streamId);
    };
    const cancel = () => {
      forget();
      // Only a call still running is cancelled: aborting every finished one cost an Error per call.
      if (!settled) {
        settle();
        controller.abort(CLIENT_GONE);
      }
      stream.stop();
    };
    const onClose = (closed: ServerResponse) => () => {
      // A resumable stream's client may come back (a tunnel dropped it): the call goes on, its
      // events are kept, and only a client that stays away cancels it.
      if (streamId && stream.canResume && !closed.writableFinished) {
        giveUp = setTimeout(cancel, RESUME_WINDOW_MS);
        giveUp.unref();
      } else cancel();
    };
    res.once('close', onClose(res));
    if (streamId) {
      this.streams.set(streamId, {
        stream,
        attached: (again) => {
          clearTimeout(giveUp);
          again.once('close', onClose(again));
        },
      });
    }
    const { signal } = controller;
    const ctx = {
      sessionId: this.sessionId,
      mcpReq: {
        id: call.id,
        method: 'tools/call',
        _meta: call.params._meta,
        signal,
        requestState: () => undefined,
        notify: async (notification: Json) => {
          if (!signal.aborted) stream.event({ jsonrpc: '2.0', ...notification });
        },
        send: (
          request: { method: string; params?: Json },
          _schema: unknown,
          options?: { signal?: AbortSignal },
        ) => this.ask(stream, request, options?.signal ?? signal),
      },
    } as unknown as ServerContext;
    this.run(call.params, ctx).then(
      (result) => {
        settle();
        // A cancelled request gets no answer: its response just ends (the SDK's rule).
        if (signal.aborted) stream.end();
        else stream.finish(answerTo(call.id, result as Json));
      },
      (error: unknown) => {
        settle();
        if (signal.aborted) stream.end();
        else stream.finish({ jsonrpc: '2.0', id: call.id, error: errorBody(error) });
      },
    );
  }

  /**
   * A GET with Last-Event-ID that names one of this class's streams: the answer goes on there.
   * False when the id is not one of them (the SDK transport replays its own streams).
   */
  resume(lastEventId: string, res: ServerResponse): boolean {
    for (const [streamId, { stream, attached }] of this.streams) {
      if (!lastEventId.endsWith(`.${streamId}`) || !stream.attach(res, lastEventId)) continue;
      attached(res);
      return true;
    }
    return false;
  }

  /** The session ended: every call is cancelled and its response closed. */
  close(): void {
    this.ended = true;
    this.streams.clear();
    for (const { controller, stream } of this.running.values()) {
      controller.abort(new Error('the session ended'));
      stream.end();
    }
    this.running.clear();
    for (const pending of this.asked.values())
      pending.reject(new SdkError(SdkErrorCode.ConnectionClosed, 'Connection closed'));
    this.asked.clear();
  }

  /** A request to the client on the call's stream (ctx.mcpReq.send), as the SDK's server sends it. */
  private ask(
    stream: AnswerStream,
    request: { method: string; params?: Json },
    signal: AbortSignal,
  ): Promise<Json> {
    if (signal.aborted)
      return Promise.reject(new SdkError(SdkErrorCode.RequestTimeout, String(signal.reason)));
    const id = `mcp-bridge-${this.nextAsk++}`;
    return new Promise<Json>((resolve, reject) => {
      const settle = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        this.asked.delete(id);
      };
      // Like the SDK: a request given up on is cancelled at the client too.
      const giveUp = (reason: unknown, error: SdkError) => {
        settle();
        stream.event({
          jsonrpc: '2.0',
          method: 'notifications/cancelled',
          params: { requestId: id, reason: String(reason) },
        });
        reject(error);
      };
      const onAbort = () =>
        giveUp(signal.reason, new SdkError(SdkErrorCode.RequestTimeout, String(signal.reason)));
      const timer = setTimeout(
        () =>
          giveUp(
            'timeout',
            new SdkError(SdkErrorCode.RequestTimeout, 'Request timed out', {
              timeout: SERVER_REQUEST_TIMEOUT_MS,
            }),
          ),
        SERVER_REQUEST_TIMEOUT_MS,
      );
      timer.unref();
      signal.addEventListener('abort', onAbort, { once: true });
      this.asked.set(id, {
        resolve: (result) => {
          settle();
          resolve(result);
        },
        reject: (error) => {
          settle();
          reject(error);
        },
      });
      stream.event({
        jsonrpc: '2.0',
        id,
        method: request.method,
        ...(request.params ? { params: request.params } : {}),
      });
    });
  }
}
