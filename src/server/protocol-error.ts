import { ProtocolError, ProtocolErrorCode } from '@modelcontextprotocol/server';
import { BridgeError, ERROR_CODES } from '../errors.js';

/** Maps any error to the JSON-RPC error a downstream client receives. Upstream protocol errors pass through. */
export function toProtocolError(error: unknown): ProtocolError {
  if (error instanceof ProtocolError) return error;
  if (error instanceof BridgeError) {
    return new ProtocolError(ERROR_CODES[error.code].jsonRpc, error.message, {
      code: error.code,
      ...error.details,
    });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new ProtocolError(ProtocolErrorCode.InternalError, `mcp-bridge internal error: ${message}`, {
    code: 'INTERNAL',
  });
}
