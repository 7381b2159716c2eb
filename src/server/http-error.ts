import { type ServerResponse, STATUS_CODES } from 'node:http';
import { type ErrorCode, httpStatusOf, jsonRpcErrorOf } from '../errors.js';

export interface HttpErrorOptions {
  /** Seconds after which the same request may succeed (sent as Retry-After). */
  readonly retryAfterS?: number;
  /** More facts for `data`, next to `code`. */
  readonly details?: Record<string, unknown>;
  /** The request's id, when the body was read and held a single request (JSON-RPC: null only if unknown). */
  readonly id?: string | number | null;
  /** Close the connection after the answer (it is the thing that is over the limit). */
  readonly close?: boolean;
  /** Only for HTTP_REQUEST_INVALID, which keeps the status the router chose (400, 414…). */
  readonly status?: number;
}

function body(code: ErrorCode, message: string, options: HttpErrorOptions): string {
  return JSON.stringify({
    jsonrpc: '2.0',
    error: jsonRpcErrorOf(code, message, options.details),
    id: options.id ?? null,
  });
}

function headers(options: HttpErrorOptions, length: number): Record<string, string> {
  return {
    'Content-Type': 'application/json',
    'Content-Length': String(length),
    ...(options.retryAfterS === undefined
      ? {}
      : { 'Retry-After': String(Math.max(1, Math.ceil(options.retryAfterS))) }),
    ...(options.close ? { Connection: 'close' } : {}),
  };
}

/**
 * Every HTTP-level failure of the endpoint: a JSON-RPC error body (never an HTML page) whose code,
 * HTTP status and `data.code` all come from the error registry. Works on a plain node:http response
 * too (the connection cap answers before express sees the request).
 */
export function sendHttpError(
  res: ServerResponse,
  code: ErrorCode,
  message: string,
  options: HttpErrorOptions = {},
): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const text = body(code, message, options);
  res.writeHead(options.status ?? httpStatusOf(code), headers(options, Buffer.byteLength(text)));
  res.end(text);
}

/** The same answer as raw bytes, for a socket whose request node:http gave up on (no response object). */
export function rawHttpError(code: ErrorCode, message: string, options: HttpErrorOptions = {}): string {
  const status = options.status ?? httpStatusOf(code);
  const text = body(code, message, options);
  const lines = Object.entries(headers({ ...options, close: true }, Buffer.byteLength(text))).map(
    ([name, value]) => `${name}: ${value}\r\n`,
  );
  return `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n${lines.join('')}\r\n${text}`;
}
