import { setMaxListeners } from 'node:events';
import {
  type AuthProvider,
  type FetchLike,
  InsufficientScopeError,
  type JSONRPCMessage,
  type MessageExtraInfo,
  SdkHttpError,
  SSEClientTransport,
  StreamableHTTPClientTransport,
  type Transport,
  type TransportSendOptions,
  UnauthorizedError,
} from '@modelcontextprotocol/client';
import type { HttpUpstreamConfig } from '../config/schema.js';
import { BridgeError } from '../errors.js';
import type { Logger } from '../log.js';
import { DepthScreen } from './deep-output.js';
import { deliverInOrder } from './deliver.js';

export interface HttpTransportOptions {
  readonly config: HttpUpstreamConfig;
  /** Bearer tokens (OAuth); absent when the config sets its own Authorization header. */
  readonly auth?: (AuthProvider & { fetch?: FetchLike }) | undefined;
  readonly log: Logger;
  /** A 403 `insufficient_scope` named the scope a request needs (requested at the next login). */
  readonly onInsufficientScope?: (scope: string | undefined) => void;
}

/** HTTP statuses of an `initialize` POST that mean "this endpoint is not Streamable HTTP". */
const FALLBACK_STATUSES = new Set([400, 404, 405]);

/**
 * Streamable HTTP, falling back to the legacy HTTP+SSE transport when the server refuses the
 * `initialize` POST with 400/404/405 (never on 401/403, which are about credentials). The fallback
 * happens inside `send`, so the MCP client sees one transport and one handshake.
 */
export class HttpUpstreamTransport implements Transport {
  onclose?: (() => void) | undefined;
  onerror?: ((error: Error) => void) | undefined;
  onmessage?: Transport['onmessage'];
  private inner: Transport;
  private mode: 'streamable-http' | 'sse';
  private started = false;
  private closed = false;

  constructor(private readonly options: HttpTransportOptions) {
    this.mode = options.config.transport;
    this.inner = this.create(this.mode);
  }

  /** Which transport is in use (for /status and logs). */
  get transportKind(): 'streamable-http' | 'sse' {
    return this.mode;
  }

  get sessionId(): string | undefined {
    return this.inner.sessionId;
  }

  get hasPerRequestStream(): boolean | undefined {
    return this.inner.hasPerRequestStream;
  }

  setProtocolVersion(version: string): void {
    this.inner.setProtocolVersion?.(version);
  }

  async start(): Promise<void> {
    this.started = true;
    await this.inner.start();
  }

  async send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    try {
      await this.inner.send(message, options);
    } catch (error) {
      if (error instanceof InsufficientScopeError) this.options.onInsufficientScope?.(error.requiredScope);
      if (!this.options.auth && isUnauthorized(error)) throw this.rejected(error);
      if (!this.shouldFallBack(message, error)) throw error;
      this.options.log.info(
        { url: this.options.config.url, status: (error as SdkHttpError).status },
        'the server refused Streamable HTTP; falling back to the legacy HTTP+SSE transport',
      );
      const old = this.inner;
      old.onclose = undefined;
      old.onerror = undefined;
      old.onmessage = undefined;
      await old.close().catch(() => {});
      this.mode = 'sse';
      this.inner = this.create('sse');
      if (this.started) await this.inner.start();
      await this.inner.send(message, options);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.inner.close();
  }

  /** A 401 without OAuth: the configured key is wrong, or the server wants a login we cannot do. */
  private rejected(cause: unknown): BridgeError {
    const { name, headers } = this.options.config;
    const configured = Object.keys(headers).some((h) => h.toLowerCase() === 'authorization');
    return new BridgeError(
      'AUTH_REJECTED',
      configured
        ? `upstream "${name}" rejected the configured Authorization header (HTTP 401); check the key in the config`
        : `upstream "${name}" requires authorization (HTTP 401); configure "headers": {"Authorization": …} or remove the header to use OAuth`,
      { cause, details: { upstream: name } },
    );
  }

  private shouldFallBack(message: JSONRPCMessage, error: unknown): boolean {
    return (
      !this.closed &&
      this.mode === 'streamable-http' &&
      'method' in message &&
      message.method === 'initialize' &&
      error instanceof SdkHttpError &&
      FALLBACK_STATUSES.has(Number(error.status))
    );
  }

  private create(mode: 'streamable-http' | 'sse'): Transport {
    const { config, auth } = this.options;
    const url = new URL(config.url);
    const headers = { ...config.headers };
    const fetch = quietFetch(auth?.fetch);
    const transport =
      mode === 'sse'
        ? new SSEClientTransport(url, { authProvider: auth, fetch, requestInit: { headers } })
        : new StreamableHTTPClientTransport(url, {
            authProvider: auth,
            fetch,
            requestInit: { headers },
            // A dropped standalone event stream is reopened; calls time out on their own.
            reconnectionOptions: {
              initialReconnectionDelay: 1000,
              maxReconnectionDelay: 30_000,
              reconnectionDelayGrowFactor: 1.5,
              maxRetries: 20,
            },
            onInsufficientScope: 'throw',
          });
    transport.onclose = () => this.onclose?.();
    transport.onerror = (error) => this.onerror?.(error);
    const depth = new DepthScreen(config.name, this.options.log);
    transport.onmessage = (message: JSONRPCMessage, extra?: MessageExtraInfo) => {
      const { deliver, reply } = depth.screen(message);
      if (reply) transport.send(reply).catch(() => {});
      if (deliver) deliverInOrder(deliver, (m) => this.onmessage?.(m, extra));
    };
    return transport;
  }
}

/**
 * The SDK transports hand every fetch the same long-lived signal, and undici adds an abort
 * listener to it per request that goes only when the Request is garbage-collected: past 1,500
 * between two collections, Node printed a MaxListenersExceededWarning for every further call.
 * The listeners are not a leak (collection removes them); the warning was noise in the service log.
 */
function quietFetch(inner: FetchLike | undefined): FetchLike {
  const send = inner ?? ((url, init) => fetch(url, init));
  return (url, init) => {
    if (init?.signal) setMaxListeners(0, init.signal);
    return send(url, init);
  };
}

function isUnauthorized(error: unknown): boolean {
  return error instanceof UnauthorizedError || (error instanceof SdkHttpError && error.status === 401);
}
