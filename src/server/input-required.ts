import { randomBytes } from 'node:crypto';
import { ProtocolError, ProtocolErrorCode } from '@modelcontextprotocol/server';
import type { CallOptions, ServerRequest } from '../upstream/upstream.js';

/** Calls one bridge keeps waiting for client input at most; more are refused. */
const MAX_PARKED = 200;
/** The client capability each relayed request needs, and the stem of its `inputRequests` key. */
const KINDS: Record<string, { capability: string; key: string }> = {
  'elicitation/create': { capability: 'elicitation', key: 'elicitation' },
  'sampling/createMessage': { capability: 'sampling', key: 'sampling' },
  'roots/list': { capability: 'roots', key: 'roots' },
};

type Outcome = { ok: true; value: Record<string, unknown> } | { ok: false; error: unknown };

interface Pending {
  readonly request: ServerRequest;
  readonly resolve: (result: Record<string, unknown>) => void;
  readonly reject: (error: unknown) => void;
}

/** An upstream call that is waiting for the client to answer its requests. */
interface Parked {
  /** The downstream method and target (tool, prompt or URI): a retry must name the same. */
  readonly target: string;
  /** What the client declared: requests it cannot answer are refused at once. */
  readonly capabilities: Record<string, unknown>;
  outcome: Promise<Outcome>;
  readonly pending: Map<string, Pending>;
  readonly abort: AbortController;
  /** Set while a round waits: a new request from the upstream wakes it. */
  wake?: (() => void) | undefined;
  expiry?: NodeJS.Timeout;
  nextKey: number;
  /** Where progress and log messages go: the round that is running (none between rounds). */
  sink: Sink;
}

/** Progress and log messages of the upstream call, for the request of the current round. */
export type Sink = Pick<CallOptions, 'onprogress' | 'onLog'>;

/** What a 2026-07-28 request brings for the multi-round-trip flow. */
export interface RoundInput {
  readonly target: string;
  readonly signal: AbortSignal;
  /** The capabilities the request's `_meta` envelope declares. */
  readonly clientCapabilities: Record<string, unknown> | undefined;
  /** Where this round's progress and log messages go. */
  readonly sink?: Sink;
  readonly requestState: unknown;
  readonly inputResponses: Record<string, unknown> | undefined;
}

/**
 * Multi-round-trip (input_required) results for 2026-07-28 clients of upstreams that ask with
 * server→client requests (every 2025-era upstream). A 2026-07-28 client cannot receive a request
 * from the bridge, so while the upstream call waits, the bridge answers the client with an
 * `input_required` result that carries the upstream's requests under keys of its own and a
 * `requestState` naming the parked call. The client's retry brings the answers, which go back to
 * the upstream, and the call goes on: to its result or to the next round.
 *
 * The state is a random 128-bit token, single use; a parked call that is not resumed within
 * `ttlMs` is cancelled upstream. A `requestState` the bridge did not mint is the upstream's own
 * (a 2026-07-28 upstream's round): it is forwarded untouched with the responses.
 */
export class InputRounds {
  private readonly parked = new Map<string, Parked>();
  /**
   * Prefix of the states this instance mints. Any other state (an upstream's, including another
   * mcp-bridge's in a chain) belongs to the upstream and is forwarded.
   */
  private readonly prefix = `mcp-bridge.${randomBytes(6).toString('base64url')}.`;

  constructor(private readonly ttlMs = 10 * 60_000) {}

  get size(): number {
    return this.parked.size;
  }

  /**
   * Runs one round of a request. `work` starts the upstream call with the options it gets; it is
   * called only for a fresh request (not for the retry of a parked one).
   */
  async run(
    input: RoundInput,
    work: (options: Partial<CallOptions>) => Promise<Record<string, unknown>>,
  ): Promise<Record<string, unknown>> {
    const state = input.requestState;
    if (typeof state === 'string' && state.startsWith(this.prefix)) {
      const parked = this.parked.get(state);
      if (!parked || parked.target !== input.target) {
        throw new ProtocolError(
          ProtocolErrorCode.InvalidParams,
          'mcp-bridge: requestState is unknown, already used or expired (or belongs to another request); send the request again without requestState',
        );
      }
      this.parked.delete(state);
      clearTimeout(parked.expiry);
      parked.sink = input.sink ?? {};
      for (const [key, pending] of parked.pending) {
        const response = input.inputResponses?.[key];
        if (response === undefined || response === null || typeof response !== 'object') continue;
        parked.pending.delete(key);
        pending.resolve(response as Record<string, unknown>);
      }
      return this.wait(parked, input.signal);
    }

    const abort = new AbortController();
    const parked: Parked = {
      target: input.target,
      capabilities: input.clientCapabilities ?? {},
      pending: new Map(),
      abort,
      nextKey: 1,
      outcome: Promise.resolve({ ok: true, value: {} }),
      sink: input.sink ?? {},
    };
    const upstreamRound =
      typeof state === 'string' || input.inputResponses !== undefined
        ? {
            ...(typeof state === 'string' ? { requestState: state } : {}),
            ...(input.inputResponses !== undefined ? { inputResponses: input.inputResponses } : {}),
          }
        : {};
    parked.outcome = work({
      signal: abort.signal,
      inputRequired: upstreamRound,
      onServerRequest: (request) => this.ask(parked, request),
      onprogress: (progress) => parked.sink.onprogress?.(progress),
      onLog: (params) => parked.sink.onLog?.(params),
    }).then(
      (value): Outcome => ({ ok: true, value }),
      (error: unknown): Outcome => ({ ok: false, error }),
    );
    return this.wait(parked, input.signal);
  }

  /** Ends every parked call (daemon shutdown). */
  close(): void {
    for (const [state, parked] of this.parked) this.expire(state, parked, 'the bridge is shutting down');
  }

  /** An upstream request during a parked call: queued for the next `input_required` round. */
  private ask(parked: Parked, request: ServerRequest): Promise<Record<string, unknown>> {
    const kind = KINDS[request.method];
    if (!kind) {
      return Promise.reject(
        new ProtocolError(ProtocolErrorCode.MethodNotFound, `mcp-bridge does not relay ${request.method}`),
      );
    }
    const missing = missingCapability(request, parked.capabilities);
    if (missing) {
      return Promise.reject(
        new ProtocolError(
          ProtocolErrorCode.InvalidRequest,
          `mcp-bridge refused ${request.method}: the calling client did not declare the ${missing} capability`,
        ),
      );
    }
    if (parked.abort.signal.aborted) {
      return Promise.reject(
        new ProtocolError(ProtocolErrorCode.InternalError, 'mcp-bridge: the call has ended'),
      );
    }
    if (this.parked.size >= MAX_PARKED) {
      return Promise.reject(
        new ProtocolError(
          ProtocolErrorCode.InternalError,
          `mcp-bridge refused ${request.method}: ${MAX_PARKED} calls are already waiting for client input`,
        ),
      );
    }
    return new Promise((resolve, reject) => {
      parked.pending.set(`${kind.key}-${parked.nextKey++}`, { request, resolve, reject });
      parked.wake?.();
    });
  }

  /** Waits for the upstream's result or its next requests; the client leaving cancels the call. */
  private async wait(parked: Parked, signal: AbortSignal): Promise<Record<string, unknown>> {
    const onAbort = () => {
      parked.abort.abort(signal.reason);
      for (const pending of parked.pending.values()) pending.reject(new Error('the client went away'));
      parked.pending.clear();
    };
    if (signal.aborted) onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      while (parked.pending.size === 0) {
        const asked = new Promise<undefined>((resolve) => {
          parked.wake = () => resolve(undefined);
        });
        const done = await Promise.race([parked.outcome, asked]);
        parked.wake = undefined;
        if (done) return finish(done);
      }
      // Requests that arrive together go out in one round.
      await new Promise((resolve) => setImmediate(resolve));
      const settled = await Promise.race([parked.outcome, Promise.resolve(undefined)]);
      if (!settled) return this.park(parked);
      // The upstream finished without waiting for the answers: nothing is left to ask.
      for (const pending of parked.pending.values()) pending.reject(new Error('the call has ended'));
      parked.pending.clear();
      return finish(settled);
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  private park(parked: Parked): Record<string, unknown> {
    parked.sink = {};
    const state = `${this.prefix}${randomBytes(16).toString('base64url')}`;
    this.parked.set(state, parked);
    parked.expiry = setTimeout(
      () => this.expire(state, parked, `the client did not answer within ${Math.round(this.ttlMs / 1000)} s`),
      this.ttlMs,
    );
    parked.expiry.unref();
    const inputRequests: Record<string, unknown> = {};
    for (const [key, { request }] of parked.pending) {
      inputRequests[key] = { method: request.method, params: request.params ?? {} };
    }
    return { resultType: 'input_required', inputRequests, requestState: state };
  }

  private expire(state: string, parked: Parked, why: string): void {
    if (this.parked.get(state) !== parked) return;
    this.parked.delete(state);
    clearTimeout(parked.expiry);
    const error = new ProtocolError(ProtocolErrorCode.InternalError, `mcp-bridge: ${why}`);
    for (const pending of parked.pending.values()) pending.reject(error);
    parked.pending.clear();
    parked.abort.abort(error);
  }
}

/**
 * The capability the client lacks for this request, if any, by the same rules the SDK applies to
 * an `input_required` result: form elicitation needs `elicitation` (an empty object means form),
 * URL elicitation `elicitation.url`, sampling with tools `sampling.tools`.
 */
function missingCapability(request: ServerRequest, caps: Record<string, unknown>): string | undefined {
  const kind = KINDS[request.method]!;
  const declared = caps[kind.capability] as Record<string, unknown> | undefined;
  if (declared === undefined || declared === null) return kind.capability;
  const params = request.params ?? {};
  if (request.method === 'elicitation/create') {
    if (params.mode === 'url') return declared.url === undefined ? 'elicitation.url' : undefined;
    const formOk = Object.keys(declared).length === 0 || declared.form !== undefined;
    return formOk ? undefined : 'elicitation.form';
  }
  if (
    request.method === 'sampling/createMessage' &&
    (params.tools !== undefined || params.toolChoice !== undefined)
  ) {
    return declared.tools === undefined ? 'sampling.tools' : undefined;
  }
  return undefined;
}

function finish(outcome: Outcome): Record<string, unknown> {
  if (outcome.ok) return outcome.value;
  throw outcome.error;
}
