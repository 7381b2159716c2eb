import { type ServerResponse, STATUS_CODES } from 'node:http';
import { ERROR_CODES, type ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import { ThrottledLog } from '../throttled-log.js';

export interface RefusalOptions {
  /** Seconds after which the same request may succeed (sent as Retry-After). */
  readonly retryAfterS?: number;
  /** More facts for `data`, next to `code`. */
  readonly details?: Record<string, unknown>;
  /** The request's id, when the body was read and held a single request. */
  readonly id?: string | number | null;
  /** Close the connection after the answer (it is the thing that is over the limit). */
  readonly close?: boolean;
}

function body(code: ErrorCode, message: string, options: RefusalOptions): string {
  return JSON.stringify({
    jsonrpc: '2.0',
    error: { code: ERROR_CODES[code].jsonRpc, message, data: { code, ...options.details } },
    id: options.id ?? null,
  });
}

function headers(options: RefusalOptions, length: number): Record<string, string> {
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
 * An HTTP-level refusal of the bridge (a limit, an unreadable body): a JSON-RPC error body with the
 * bridge's code in `data.code`, like `sendJsonRpcError`, but on a plain node:http response too (the
 * connection cap answers before express sees the request).
 */
export function sendRefusal(
  res: ServerResponse,
  status: number,
  code: ErrorCode,
  message: string,
  options: RefusalOptions = {},
): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const text = body(code, message, options);
  res.writeHead(status, headers(options, Buffer.byteLength(text)));
  res.end(text);
}

/** The same answer as raw bytes, for a socket whose request node:http gave up on (no response object). */
export function rawRefusal(
  status: number,
  code: ErrorCode,
  message: string,
  options: RefusalOptions = {},
): string {
  const text = body(code, message, options);
  const lines = Object.entries(headers({ ...options, close: true }, Buffer.byteLength(text))).map(
    ([name, value]) => `${name}: ${value}\r\n`,
  );
  return `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n${lines.join('')}\r\n${text}`;
}

/**
 * Logs that a limit was reached, at most once per 10 s per limit: a flood of refused requests must
 * not become a flood of log lines.
 */
export class RefusalLog {
  private readonly log: ThrottledLog;

  constructor(logger: Logger) {
    this.log = new ThrottledLog(logger, 'refusedSinceLastReport');
  }

  /** `kind` tells apart notes of one code that say different things (each is throttled on its own). */
  note(code: ErrorCode, message: string, details: Record<string, unknown> = {}, kind = ''): void {
    this.log.warn(`${code} ${kind}`, { code, ...details }, message);
  }
}
