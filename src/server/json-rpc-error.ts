import type { Response } from 'express';

/** Every HTTP failure of the endpoint carries a JSON-RPC error body, never an HTML page. */
export function sendJsonRpcError(
  res: Response,
  status: number,
  code: number,
  message: string,
  data?: Record<string, unknown>,
  /** The request's id, when the body was a single request (JSON-RPC: null only if it is unknown). */
  id: string | number | null = null,
): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res
    .status(status)
    .type('application/json')
    .send(JSON.stringify({ jsonrpc: '2.0', error: { code, message, ...(data ? { data } : {}) }, id }));
}
