import { ProtocolError, ProtocolErrorCode } from '@modelcontextprotocol/client';
import type { Logger } from '../log.js';
import type { CallOptions, ServerRequest } from './upstream-types.js';

/** Server→client requests the bridge passes on to the client whose call is running. */
export const RELAYED_REQUESTS = ['elicitation/create', 'sampling/createMessage', 'roots/list'] as const;

/** URL elicitations remembered per upstream: a server that never completes them does not grow this forever. */
const MAX_URL_ELICITATIONS = 100;

/**
 * Routes what an upstream sends on its own (requests to its client, log messages, the completion
 * of a URL elicitation) to the callers of the calls in flight. Nothing is ever broadcast to a
 * client that has no call running (stdio gives no way to tell which call a request belongs to).
 */
export class CallRouter {
  /** The callers of the calls in flight: where the upstream's requests and logs go. */
  private readonly callers = new Set<CallOptions>();
  /** URL elicitations relayed to a client, by id: their completion notice goes to that client. */
  private readonly urlElicitations = new Map<string, NonNullable<CallOptions['onLaterNotification']>>();

  constructor(
    private readonly name: string,
    private readonly log: Logger,
  ) {}

  /** Calls are waiting for an answer: a busy server is not pinged. */
  get busy(): boolean {
    return this.callers.size > 0;
  }

  /** Registers the caller of one call (a distinct object per call); returns the function that removes it. */
  track(caller: CallOptions): () => void {
    this.callers.add(caller);
    return () => this.callers.delete(caller);
  }

  /**
   * An upstream's request to its client belongs to the call that is running: with exactly one caller
   * that can answer, it goes there; otherwise it is refused (never broadcast to other clients).
   */
  serverRequest(request: ServerRequest): Promise<Record<string, unknown>> {
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
      if (this.urlElicitations.size > MAX_URL_ELICITATIONS)
        this.urlElicitations.delete(this.urlElicitations.keys().next().value!);
    }
    return asker.onServerRequest!(request);
  }

  /** The end of a URL elicitation, for the client that was asked (it may come after the call). */
  elicitationComplete(params: Record<string, unknown>): void {
    const id = String(params.elicitationId);
    const notify = this.urlElicitations.get(id);
    this.urlElicitations.delete(id);
    if (notify) notify({ method: 'notifications/elicitation/complete', params });
    else this.log.debug({ elicitationId: id }, 'elicitation/complete for no relayed elicitation; dropped');
  }

  /** Log messages go to the callers of the calls in flight, tagged with the upstream. */
  logMessage(params: Record<string, unknown>): void {
    const logger = typeof params.logger === 'string' ? `${this.name}/${params.logger}` : this.name;
    const tagged = { ...params, logger };
    const listeners = distinctCallers([...this.callers].filter((c) => c.onLog));
    if (listeners.length === 0) this.log.debug({ message: tagged }, 'upstream log message (no caller)');
    for (const caller of listeners) caller.onLog!(tagged);
  }
}

/** One entry per calling client: several calls of the same session count once. */
function distinctCallers(callers: CallOptions[]): CallOptions[] {
  const seen = new Map<object, CallOptions>();
  for (const caller of callers)
    if (!seen.has(caller.caller ?? caller)) seen.set(caller.caller ?? caller, caller);
  return [...seen.values()];
}
