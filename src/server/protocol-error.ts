import { ProtocolError, ProtocolErrorCode } from '@modelcontextprotocol/server';
import { BridgeError, jsonRpcErrorOf } from '../errors.js';

/** Maps any error to the JSON-RPC error a downstream client receives. Upstream protocol errors pass through. */
export function toProtocolError(error: unknown): ProtocolError {
  if (error instanceof ProtocolError) return error;
  if (error instanceof BridgeError) {
    const { code, message, data } = jsonRpcErrorOf(error.code, error.message, error.details);
    return new ProtocolError(code, message, data);
  }
  const message = error instanceof Error ? error.message : String(error);
  return new ProtocolError(ProtocolErrorCode.InternalError, `mcp-bridge internal error: ${message}`, {
    code: 'INTERNAL',
  });
}
