import {
  type JSONRPCMessage,
  type Progress,
  ProtocolError,
  SdkError,
  SdkErrorCode,
  type Transport,
} from '@modelcontextprotocol/client';
import { isJsonObject as isObject } from '../json-object.js';
import type { PassthroughResult } from './upstream-types.js';

type Json = Record<string, unknown>;

interface Pending {
  readonly method: string;
  resolve(result: PassthroughResult): void;
  reject(error: unknown): void;
  readonly onprogress: ((progress: Progress) => void) | undefined;
}

/** What the SDK rejects an aborted request with: the abort reason if it is the SDK's, else a timeout. */
const abortError = (reason: unknown) =>
  reason instanceof SdkError ? reason : new SdkError(SdkErrorCode.RequestTimeout, String(reason));

const installed = new WeakMap<Transport, DirectRequests>();

/** The SDK Protocol's next request id (a plain field in SDK v2). */
interface IdCounter {
  _requestMessageId: number;
}

/**
 * The calls of a 2025-era stdio upstream, sent on the transport the SDK Client is connected to but
 * without the Client's request machinery (its per-message zod checks were most of the Client's
 * cost on the hot path). It does for them what `Client.request` does: the next id of the Client's
 * own counter (so the upstream sees the ids it always saw), that id as the progress token when
 * progress is wanted, the result
 * checked to be an object (the 2025 codec's `resultType` stripped), JSON-RPC errors as
 * `ProtocolError`, `notifications/cancelled` and the abort reason on abort, `Connection closed`
 * when the transport closes. Everything else the upstream sends still goes to the Client.
 */
export class DirectRequests {
  private readonly pending = new Map<number, Pending>();
  private closed = false;

  /**
   * The transport's instance, installed in front of the Client's handlers on first use; undefined
   * if the Client's id counter is not where this SDK version keeps it (then the Client sends).
   */
  static of(transport: Transport, client: object): DirectRequests | undefined {
    let direct = installed.get(transport);
    if (!direct) {
      if (typeof (client as IdCounter)._requestMessageId !== 'number') return undefined;
      direct = new DirectRequests(transport, client as IdCounter);
      installed.set(transport, direct);
    }
    return direct;
  }

  private constructor(
    private readonly transport: Transport,
    private readonly ids: IdCounter,
  ) {
    const { onmessage, onclose } = transport;
    transport.onmessage = (message, extra) => {
      if (!this.take(message)) onmessage?.call(transport, message, extra);
    };
    transport.onclose = () => {
      this.close();
      onclose?.call(transport);
    };
  }

  request(
    method: string,
    params: Json | undefined,
    options: { signal: AbortSignal; onprogress?: ((progress: Progress) => void) | undefined },
  ): Promise<PassthroughResult> {
    const { signal, onprogress } = options;
    if (this.closed) return Promise.reject(new SdkError(SdkErrorCode.NotConnected, 'Not connected'));
    if (signal.aborted) return Promise.reject(abortError(signal.reason));
    // The Client's own counter: ids stay the integers it would have sent (some servers take no others).
    const id = this.ids._requestMessageId++;
    const sent = onprogress
      ? { ...params, _meta: { ...(params?._meta as Json | undefined), progressToken: id } }
      : params;
    return new Promise<PassthroughResult>((resolve, reject) => {
      const settle = () => {
        this.pending.delete(id);
        signal.removeEventListener('abort', onAbort);
      };
      const onAbort = () => {
        settle();
        this.transport
          .send({
            jsonrpc: '2.0',
            method: 'notifications/cancelled',
            params: { requestId: id, reason: String(signal.reason) },
          })
          .catch(() => {});
        reject(abortError(signal.reason));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.pending.set(id, {
        method,
        onprogress,
        resolve: (result) => {
          settle();
          resolve(result);
        },
        reject: (error) => {
          settle();
          reject(error);
        },
      });
      const message = { jsonrpc: '2.0', id, method, ...(sent ? { params: sent } : {}) } as JSONRPCMessage;
      this.transport.send(message).catch((error: unknown) => this.pending.get(id)?.reject(error));
    });
  }

  /** Settles a response or routes a progress notification that belongs to a request of ours. */
  private take(message: JSONRPCMessage): boolean {
    const { id, method, params } = message as { id?: unknown; method?: unknown; params?: Json };
    // Matched the way the SDK's _onresponse and _onprogress do: by Number(id).
    if ((typeof id === 'number' || typeof id === 'string') && method === undefined) {
      const pending = this.pending.get(Number(id));
      if (!pending) return false;
      const { result, error } = message as { result?: unknown; error?: unknown };
      if (isObject(error)) {
        pending.reject(ProtocolError.fromError(Number(error.code), String(error.message), error.data));
      } else if (isObject(result)) {
        // The 2025 codec's decodeResult: a stray `resultType` is not part of that era's results.
        if ('resultType' in result) {
          const { resultType: _, ...rest } = result;
          pending.resolve(rest);
        } else pending.resolve(result);
      } else {
        pending.reject(
          new SdkError(SdkErrorCode.InvalidResult, `Invalid result for ${pending.method}: not an object`),
        );
      }
      return true;
    }
    if (method === 'notifications/progress' && params?.progressToken !== undefined) {
      const pending = this.pending.get(Number(params.progressToken));
      if (!pending?.onprogress) return false;
      const { progressToken: _, ...progress } = params;
      pending.onprogress(progress as Progress);
      return true;
    }
    return false;
  }

  private close(): void {
    this.closed = true;
    const error = new SdkError(SdkErrorCode.ConnectionClosed, 'Connection closed');
    for (const pending of [...this.pending.values()]) pending.reject(error);
  }
}
