import type { Tool } from '@modelcontextprotocol/client';
import type { Logger } from '../log.js';

/** The lifecycle of one upstream (see docs/design.md). */
export type UpstreamState =
  | 'idle'
  | 'starting'
  | 'ready'
  | 'backoff'
  | 'needs_auth'
  | 'failed'
  | 'stopping'
  | 'stopped';

const TRANSITIONS: Readonly<Record<UpstreamState, readonly UpstreamState[]>> = {
  idle: ['starting', 'stopping'],
  starting: ['ready', 'backoff', 'needs_auth', 'failed', 'stopping'],
  // ready → starting: a connection that was stable for long enough drops and reconnects at once.
  ready: ['starting', 'backoff', 'needs_auth', 'stopping'],
  backoff: ['starting', 'failed', 'stopping'],
  needs_auth: ['starting', 'stopping'],
  failed: ['starting', 'stopping'],
  stopping: ['stopped'],
  stopped: [],
};

export function canTransition(from: UpstreamState, to: UpstreamState): boolean {
  return TRANSITIONS[from].includes(to);
}

/**
 * Whether `from → to` is in the table. An invalid transition is a bug: it throws under vitest so
 * that a test finds it, and is logged as an error (and ignored) in production, never crashing the daemon.
 */
export function checkTransition(from: UpstreamState, to: UpstreamState, log: Pick<Logger, 'error'>): boolean {
  if (canTransition(from, to)) return true;
  const message = `invalid upstream state transition ${from} → ${to}; ignored`;
  if (process.env.VITEST) throw new Error(message);
  log.error({ from, to }, message);
  return false;
}

/** States in which a call may still succeed if it waits a little. */
export function isTransient(state: UpstreamState): boolean {
  return state === 'idle' || state === 'starting' || state === 'backoff';
}

export interface UpstreamErrorInfo {
  readonly code: string;
  readonly message: string;
  /** Epoch ms. */
  readonly at: number;
}

export interface UpstreamExitInfo {
  readonly code: number | null;
  readonly signal: string | null;
  /** Epoch ms. */
  readonly at: number;
}

/** An item of a list an upstream serves (prompt, resource, template), raw: unknown fields kept. */
export type Listed = Readonly<Record<string, unknown>>;

/** What a change to a snapshot may touch (name and kind are fixed; `since` follows the state). */
export type SnapshotPatch = Partial<Omit<UpstreamSnapshot, 'name' | 'kind' | 'since'>>;

/** An immutable picture of an upstream, published on every change. */
export interface UpstreamSnapshot {
  readonly name: string;
  readonly kind: 'stdio' | 'http';
  readonly state: UpstreamState;
  /** Epoch ms of the last state change. */
  readonly since: number;
  /** The tools clients see: live when ready, otherwise the last good list from the cache. */
  readonly tools: readonly Tool[];
  readonly toolsSource: 'live' | 'cache' | 'none';
  /** Pid of the running child (stdio). */
  readonly pid: number | undefined;
  /** Connections re-established after the first one. */
  readonly restarts: number;
  /** Consecutive failed attempts in the current backoff run. */
  readonly attempt: number;
  readonly lastError: UpstreamErrorInfo | undefined;
  readonly lastExit: UpstreamExitInfo | undefined;
  /** Name and version the server reported in its handshake. */
  readonly serverInfo: { readonly name: string; readonly version: string } | undefined;
  /** Prompts, resources and resource templates of a ready upstream (not cached across restarts). */
  readonly prompts?: readonly Listed[] | undefined;
  readonly resources?: readonly Listed[] | undefined;
  readonly resourceTemplates?: readonly Listed[] | undefined;
  /** The server's `instructions` from its handshake. */
  readonly instructions?: string | undefined;
  /** What the server said it supports in its handshake. */
  readonly capabilities?: Readonly<Record<string, unknown>> | undefined;
  /** The wire of the current connection: stdio, streamable-http or sse. */
  readonly transport?: 'stdio' | 'streamable-http' | 'sse' | 'http' | undefined;
  /** The protocol revision negotiated with the server (2026-07-28 when it speaks that one). */
  readonly protocolVersion?: string | undefined;
}
