import type { StandardSchemaV1, Tool, Transport } from '@modelcontextprotocol/client';
import type { UpstreamConfig } from '../config/schema.js';
import type { BridgeError } from '../errors.js';
import { isJsonObject } from '../json-object.js';
import type { Logger } from '../log.js';

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

/** A downstream client, for the activity log: its clientInfo, session or request id, era. */
export interface CallerInfo {
  readonly name?: string | undefined;
  readonly version?: string | undefined;
  readonly session?: string | undefined;
  readonly requestId?: string | number | undefined;
  readonly era: '2025' | '2026-07-28';
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
  /** The caller as the activity log records it (relay.ts fills it in). */
  readonly who?: CallerInfo | undefined;
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

export type PassthroughResult = Record<string, unknown>;

const received = (value: unknown) =>
  value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;

/**
 * Results are passed on untouched: unknown fields must survive, so no spec schema strips them. A
 * Standard Schema that only checks for an object (zod's `looseObject({})` said the same, in zod's
 * words, but copied every result on the hot path).
 */
export const PassthroughResultSchema: StandardSchemaV1<PassthroughResult> = {
  '~standard': {
    version: 1,
    vendor: 'mcp-bridge',
    validate: (value) =>
      isJsonObject(value)
        ? { value }
        : { issues: [{ message: `Invalid input: expected object, received ${received(value)}` }] },
  },
};
