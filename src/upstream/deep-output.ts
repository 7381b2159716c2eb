import type { JSONRPCMessage } from '@modelcontextprotocol/client';
import { ERROR_CODES } from '../errors.js';
import { MAX_JSON_DEPTH, nestedDeeperThan } from '../json-depth.js';
import type { Logger } from '../log.js';
import { ThrottledLog } from '../throttled-log.js';

/** What becomes of a message from an upstream. */
export interface Screened {
  /** For the SDK client: the message itself, or the error that settles the call a too-deep response answered. */
  readonly deliver?: JSONRPCMessage;
  /** For the upstream: the error answer to a too-deep request of its own, so it does not wait forever. */
  readonly reply?: JSONRPCMessage;
}

type Kind = 'response' | 'request' | 'notification';

/**
 * Keeps upstream messages nested deeper than MAX_JSON_DEPTH away from the rest of the daemon: one
 * such tool schema overflowed the stack in every later walk of the merged catalog (the downstream
 * `tools/list`, the tool cache, snapshot listeners), which emptied `tools/list` for all upstreams.
 * The message is dropped and a warning logged without its content; a pending call gets
 * UPSTREAM_OUTPUT_TOO_DEEP at once instead of waiting for its timeout.
 */
export class DepthScreen {
  private readonly warnings: ThrottledLog | undefined;

  constructor(
    private readonly upstream: string,
    log: Logger | undefined,
  ) {
    this.warnings = log ? new ThrottledLog(log, 'droppedSinceLastReport') : undefined;
  }

  screen(message: JSONRPCMessage): Screened {
    if (!nestedDeeperThan(message, MAX_JSON_DEPTH)) return { deliver: message };
    const { id, method } = message as { id?: unknown; method?: unknown };
    const hasId = typeof id === 'string' || typeof id === 'number';
    const kind: Kind = method !== undefined ? (hasId ? 'request' : 'notification') : 'response';
    // Throttled per kind, not per method: the upstream picks the method, and the keys must stay few.
    this.warnings?.warn(
      kind,
      {
        code: 'UPSTREAM_OUTPUT_TOO_DEEP',
        limit: MAX_JSON_DEPTH,
        kind,
        ...(typeof method === 'string' ? { method: method.slice(0, 100) } : {}),
      },
      `upstream sent a ${kind} nested more than ${MAX_JSON_DEPTH} levels deep; dropped it`,
    );
    if (!hasId) return {};
    if (kind === 'response') {
      return {
        deliver: this.error(
          id,
          `upstream "${this.upstream}" answered with JSON nested more than ${MAX_JSON_DEPTH} levels deep; mcp-bridge dropped the answer`,
        ),
      };
    }
    return {
      reply: this.error(
        id,
        `mcp-bridge dropped this request: its JSON is nested more than ${MAX_JSON_DEPTH} levels deep`,
      ),
    };
  }

  private error(id: string | number, message: string): JSONRPCMessage {
    return {
      jsonrpc: '2.0',
      id,
      error: {
        code: ERROR_CODES.UPSTREAM_OUTPUT_TOO_DEEP.jsonRpc,
        message,
        data: { code: 'UPSTREAM_OUTPUT_TOO_DEEP', upstream: this.upstream, limit: MAX_JSON_DEPTH },
      },
    };
  }
}
