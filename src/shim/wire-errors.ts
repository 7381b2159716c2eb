import { errorMessage, jsonRpcErrorOf } from '../errors.js';
import type { Id, Message } from './http-read.js';

/**
 * Every error the shim itself writes to its client, with its code from the registry (so it carries
 * `data.code` like the daemon's own errors). The texts are shared by both revisions' forwarders.
 */

/** A stdin line that is not JSON has no id to answer to: JSON-RPC says `null`. */
export function lineNotJson(): Message {
  return {
    jsonrpc: '2.0',
    id: null as unknown as Id,
    error: jsonRpcErrorOf('LINE_NOT_JSON', 'Parse error: the line is not JSON'),
  };
}

/** The connection broke while a request that may have run was in flight: never repeated silently. */
export function restartedDuring(id: Id, method: string | undefined): Message {
  return {
    jsonrpc: '2.0',
    id,
    error: jsonRpcErrorOf(
      'DAEMON_RESTARTED',
      `mcp-bridge restarted during ${method}; it may or may not have run. Call it again if that is safe.`,
    ),
  };
}

/** A request the daemon keeps dropping (something about the request itself, not a restart). */
export function droppedRepeatedly(
  id: Id,
  method: string | undefined,
  attempts: number,
  error: unknown,
): Message {
  return {
    jsonrpc: '2.0',
    id,
    error: jsonRpcErrorOf(
      'DAEMON_RESTARTED',
      `mcp-bridge dropped ${method} ${attempts} times in a row (${errorMessage(error)}); see the daemon's log`,
    ),
  };
}

/** No daemon answered within --wait: names the URL, how to start it, and `mcp-bridge doctor`. */
export function unreachable(id: Id, url: string, triedToStart: boolean, error: unknown): Message {
  const start = triedToStart
    ? 'the shim tried to start it'
    : 'start it with `npm start` in the mcp-bridge folder (or run the shim with --start-daemon)';
  return {
    jsonrpc: '2.0',
    id,
    error: jsonRpcErrorOf(
      'DAEMON_UNREACHABLE',
      `the mcp-bridge daemon is not reachable at ${url} (${errorMessage(error)}); ${start}. Run \`mcp-bridge doctor\` to see what stops it`,
    ),
  };
}
