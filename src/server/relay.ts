import {
  CLIENT_CAPABILITIES_META_KEY,
  CLIENT_INFO_META_KEY,
  LOG_LEVEL_META_KEY,
  PROTOCOL_VERSION_META_KEY,
  type Server,
  type ServerContext,
} from '@modelcontextprotocol/server';
import { type CallOptions, PassthroughResultSchema } from '../upstream/upstream.js';
import { InputRounds } from './input-required.js';
import { toProtocolError } from './protocol-error.js';

const LOG_LEVELS = ['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency'];

/**
 * Whether a call's caller gets an upstream log message: 2025 sessions always (their level is set
 * with logging/setLevel, which reaches the upstreams); a 2026-07-28 request only if its `_meta`
 * envelope names a log level, and only messages at or above it.
 */
export function wantsLog(envelope: Record<string, unknown> | undefined, level: unknown): boolean {
  if (envelope?.[PROTOCOL_VERSION_META_KEY] === undefined) return true;
  const wanted = envelope[LOG_LEVEL_META_KEY];
  if (typeof wanted !== 'string') return false;
  return LOG_LEVELS.indexOf(String(level)) >= LOG_LEVELS.indexOf(wanted);
}

/**
 * One upstream request on behalf of a downstream one (tools/call, prompts/get, resources/read):
 * its progress and log messages go to the caller, and so do the upstream's own requests. A 2025
 * session is asked directly; a 2026-07-28 client gets them as `input_required` rounds.
 */
export class Relay {
  /** Upstream calls waiting for a 2026-07-28 client's answers. */
  private readonly rounds = new InputRounds();
  /** The level each 2025 session set with logging/setLevel. */
  private readonly logLevels = new WeakMap<Server, string>();

  /** A 2025 session's logging/setLevel: its later calls ask the upstreams for this level. */
  setLevel(server: Server, level: string): void {
    this.logLevels.set(server, level);
  }

  /** Ends the calls still waiting for a client's answers (daemon shutdown). */
  close(): void {
    this.rounds.close();
  }

  async run(
    server: Server,
    ctx: ServerContext,
    target: string,
    call: (options: CallOptions) => Promise<Record<string, unknown>>,
  ): Promise<never> {
    const envelope = ctx.mcpReq.envelope as Record<string, unknown> | undefined;
    const modern = envelope?.[PROTOCOL_VERSION_META_KEY] !== undefined;
    const progressToken = ctx.mcpReq._meta?.progressToken;
    // Progress and logs go out in order and before the result: the response closes the request's stream.
    let relayed = Promise.resolve();
    let anyProgress = false;
    const send = (notification: { method: string; params: Record<string, unknown> }) => {
      relayed = relayed.then(() => ctx.mcpReq.notify(notification as never)).catch(() => {});
    };
    const info = (modern ? envelope?.[CLIENT_INFO_META_KEY] : server.getClientVersion()) as
      | { name?: unknown; version?: unknown }
      | undefined;
    const base: CallOptions = {
      caller: server,
      who: {
        name: typeof info?.name === 'string' ? info.name : undefined,
        version: typeof info?.version === 'string' ? info.version : undefined,
        session: ctx.sessionId,
        requestId: ctx.mcpReq.id,
        era: modern ? '2026-07-28' : '2025',
      },
      signal: ctx.mcpReq.signal,
      onprogress:
        progressToken === undefined
          ? undefined
          : (progress) => {
              anyProgress = true;
              send({ method: 'notifications/progress', params: { ...progress, progressToken } });
            },
      onLog: (params) => {
        if (wantsLog(envelope, params.level)) send({ method: 'notifications/message', params });
      },
    };
    try {
      const result = modern
        ? await this.rounds.run(
            {
              target: `${ctx.mcpReq.method} ${target}`,
              signal: ctx.mcpReq.signal,
              clientCapabilities: envelope?.[CLIENT_CAPABILITIES_META_KEY] as
                | Record<string, unknown>
                | undefined,
              requestState: ctx.mcpReq.requestState(),
              inputResponses: ctx.mcpReq.inputResponses,
              sink: { onprogress: base.onprogress, onLog: base.onLog },
            },
            (options) =>
              call({
                ...base,
                ...options,
                clientCapabilities: envelope?.[CLIENT_CAPABILITIES_META_KEY] as
                  | Record<string, unknown>
                  | undefined,
                logLevel: envelope?.[LOG_LEVEL_META_KEY] as string | undefined,
              }),
          )
        : await call({
            ...base,
            clientCapabilities: server.getClientCapabilities() as Record<string, unknown> | undefined,
            // A 2025 session hears every level until it sets one.
            logLevel: this.logLevels.get(server) ?? 'debug',
            onLaterNotification: (notification) => {
              server.notification(notification as never).catch(() => {});
            },
            onServerRequest: (upstreamRequest) =>
              ctx.mcpReq.send(
                { method: upstreamRequest.method, params: upstreamRequest.params },
                PassthroughResultSchema,
                { signal: ctx.mcpReq.signal },
              ),
          });
      await relayed;
      // SDK clients drop a progress notification read in the same chunk as the result (they
      // settle responses before notification handlers run): let the last one go out first.
      if (anyProgress) await new Promise((resolve) => setImmediate(resolve));
      return result as never;
    } catch (error) {
      throw toProtocolError(error);
    }
  }
}
