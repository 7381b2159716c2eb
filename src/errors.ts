// JSON-RPC codes (kept as numbers so the CLI can load this file without the SDK).
const INVALID_PARAMS = -32602;
const INTERNAL_ERROR = -32603;
/** Implementation-defined server error: the upstream cannot serve the request. */
const UPSTREAM_ERROR = -32001;
/** The request lacks the local access token (HTTP 401). */
const UNAUTHORIZED = -32010;
const PARSE_ERROR = -32700;
const INVALID_REQUEST = -32600;
/** The daemon is at one of its limits (HTTP 503 with Retry-After): nothing was done, send it again later. */
const BUSY = -32011;
/** The answer to a request its client cancelled (the LSP code; MCP defines none). */
const REQUEST_CANCELLED = -32800;
const METHOD_NOT_FOUND = -32601;
/** Session-level refusals of the Streamable HTTP transport (the SDK's own choice of code). */
const SESSION_ERROR = -32000;
/** The shim: the daemon restarted while a request that may have run was in flight. */
const DAEMON_RESTARTED = -32002;
/** The shim: no daemon answered in time. */
const DAEMON_DOWN = -32003;
/** SEP-2243 HeaderMismatch: HTTP headers that should mirror the body do not. */
const HEADER_MISMATCH = -32020;

/**
 * Every error the bridge raises on purpose has one of these codes. docs/errors.md explains each one
 * (test/unit/error-registry.test.ts keeps the two in step); the JSON-RPC code, the HTTP status of an
 * HTTP-level answer and the CLI exit code are derived here and nowhere else.
 */
export const ERROR_CODES = {
  CONFIG_NOT_FOUND: { jsonRpc: INTERNAL_ERROR, exit: 2 },
  CONFIG_INVALID: { jsonRpc: INTERNAL_ERROR, exit: 2 },
  CONFIG_DIR_UNSAFE: { jsonRpc: INTERNAL_ERROR, exit: 2 },
  USAGE: { jsonRpc: INVALID_PARAMS, exit: 2 },
  COMMAND_NOT_FOUND: { jsonRpc: UPSTREAM_ERROR, exit: 1 },
  CWD_NOT_FOUND: { jsonRpc: UPSTREAM_ERROR, exit: 1 },
  SPAWN_FAILED: { jsonRpc: UPSTREAM_ERROR, exit: 1 },
  HANDSHAKE_FAILED: { jsonRpc: UPSTREAM_ERROR, exit: 1 },
  UPSTREAM_NOT_READY: { jsonRpc: UPSTREAM_ERROR, exit: 1 },
  UPSTREAM_CLOSED: { jsonRpc: UPSTREAM_ERROR, exit: 1 },
  UPSTREAM_TIMEOUT: { jsonRpc: UPSTREAM_ERROR, exit: 1 },
  UPSTREAM_OUTPUT_TOO_LARGE: { jsonRpc: UPSTREAM_ERROR, exit: 1 },
  UPSTREAM_OUTPUT_TOO_DEEP: { jsonRpc: UPSTREAM_ERROR, exit: 1 },
  UNKNOWN_TOOL: { jsonRpc: INVALID_PARAMS, exit: 1 },
  UNKNOWN_PROMPT: { jsonRpc: INVALID_PARAMS, exit: 1 },
  UNKNOWN_RESOURCE: { jsonRpc: INVALID_PARAMS, exit: 1 },
  SECRET_UNAVAILABLE: { jsonRpc: UPSTREAM_ERROR, exit: 1 },
  NEEDS_AUTH: { jsonRpc: UPSTREAM_ERROR, exit: 1 },
  AUTH_REJECTED: { jsonRpc: UPSTREAM_ERROR, exit: 1 },
  INSUFFICIENT_SCOPE: { jsonRpc: UPSTREAM_ERROR, exit: 1 },
  OAUTH_DISCOVERY_FAILED: { jsonRpc: UPSTREAM_ERROR, exit: 1 },
  OAUTH_UNSUPPORTED: { jsonRpc: UPSTREAM_ERROR, exit: 1 },
  OAUTH_REGISTRATION_FAILED: { jsonRpc: UPSTREAM_ERROR, exit: 1 },
  OAUTH_CALLBACK_INVALID: { jsonRpc: UPSTREAM_ERROR, exit: 1 },
  OAUTH_TOKEN_FAILED: { jsonRpc: UPSTREAM_ERROR, exit: 1 },
  LOGIN_FAILED: { jsonRpc: INTERNAL_ERROR, exit: 1 },
  PORT_IN_USE: { jsonRpc: INTERNAL_ERROR, exit: 1 },
  DAEMON_ALREADY_RUNNING: { jsonRpc: INTERNAL_ERROR, exit: 1 },
  DAEMON_UNREACHABLE: { jsonRpc: DAEMON_DOWN, exit: 1 },
  ACCESS_TOKEN_REQUIRED: { jsonRpc: UNAUTHORIZED, http: 401, exit: 1 },
  ACCESS_TOKEN_INVALID: { jsonRpc: UNAUTHORIZED, http: 401, exit: 1 },
  OWNER_PASSWORD_REQUIRED: { jsonRpc: INTERNAL_ERROR, exit: 2 },
  BEARER_TOKEN_REQUIRED: { jsonRpc: UNAUTHORIZED, http: 401, exit: 1 },
  BEARER_TOKEN_INVALID: { jsonRpc: UNAUTHORIZED, http: 401, exit: 1 },
  CONSENT_LOCKED: { jsonRpc: BUSY, http: 429, exit: 1 },
  CONNECTOR_NOT_FOUND: { jsonRpc: INVALID_PARAMS, exit: 1 },
  DAEMON_NOT_VERIFIED: { jsonRpc: INTERNAL_ERROR, exit: 1 },
  HEADERS_TIMEOUT: { jsonRpc: INVALID_REQUEST, http: 408, exit: 1 },
  BODY_TIMEOUT: { jsonRpc: INVALID_REQUEST, http: 408, exit: 1 },
  TOO_MANY_CONNECTIONS: { jsonRpc: BUSY, http: 503, exit: 1 },
  BODY_BYTES_IN_FLIGHT: { jsonRpc: BUSY, http: 503, exit: 1 },
  TOO_MANY_SESSIONS: { jsonRpc: BUSY, http: 503, exit: 1 },
  UNSUPPORTED_ENCODING: { jsonRpc: INVALID_REQUEST, http: 415, exit: 1 },
  BODY_UNREADABLE: { jsonRpc: PARSE_ERROR, http: 400, exit: 1 },
  JSON_TOO_DEEP: { jsonRpc: INVALID_REQUEST, http: 400, exit: 1 },
  REQUEST_CANCELLED: { jsonRpc: REQUEST_CANCELLED, exit: 1 },
  HOST_FORBIDDEN: { jsonRpc: INVALID_REQUEST, http: 403, exit: 1 },
  ORIGIN_FORBIDDEN: { jsonRpc: INVALID_REQUEST, http: 403, exit: 1 },
  PAGE_REQUEST_FORBIDDEN: { jsonRpc: INVALID_REQUEST, http: 403, exit: 1 },
  BODY_TOO_LARGE: { jsonRpc: INVALID_REQUEST, http: 413, exit: 1 },
  BODY_NOT_JSON: { jsonRpc: PARSE_ERROR, http: 400, exit: 1 },
  HTTP_REQUEST_INVALID: { jsonRpc: INVALID_REQUEST, http: 400, exit: 1 },
  ROUTE_NOT_FOUND: { jsonRpc: METHOD_NOT_FOUND, http: 404, exit: 1 },
  SESSION_REQUIRED: { jsonRpc: SESSION_ERROR, http: 400, exit: 1 },
  SESSION_NOT_FOUND: { jsonRpc: UPSTREAM_ERROR, http: 404, exit: 1 },
  HEADER_MISMATCH: { jsonRpc: HEADER_MISMATCH, http: 400, exit: 1 },
  LINE_NOT_JSON: { jsonRpc: PARSE_ERROR, exit: 1 },
  DAEMON_RESTARTED: { jsonRpc: DAEMON_RESTARTED, exit: 1 },
  SERVICE_MANAGER_UNAVAILABLE: { jsonRpc: INTERNAL_ERROR, exit: 1 },
  SERVICE_PATH_TEMPORARY: { jsonRpc: INTERNAL_ERROR, exit: 1 },
  SERVICE_NOT_INSTALLED: { jsonRpc: INTERNAL_ERROR, exit: 1 },
  SERVICE_COMMAND_FAILED: { jsonRpc: INTERNAL_ERROR, exit: 1 },
  INTERNAL: { jsonRpc: INTERNAL_ERROR, http: 500, exit: 1 },
} as const satisfies Record<string, ErrorEntry>;

/** One registry entry: JSON-RPC `error.code`, HTTP status when it is an HTTP-level answer, CLI exit code. */
export interface ErrorEntry {
  readonly jsonRpc: number;
  readonly http?: number;
  readonly exit: number;
}

export type ErrorCode = keyof typeof ERROR_CODES;

/** The one error class of the bridge: a stable `code`, a message that names the thing and the value. */
export class BridgeError extends Error {
  override readonly name = 'BridgeError';
  readonly code: ErrorCode;
  /** Extra machine-readable facts (upstream name, state, path…), sent as JSON-RPC `data`. */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    code: ErrorCode,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details ?? {};
  }
}

export function isBridgeError(error: unknown, code?: ErrorCode): error is BridgeError {
  return error instanceof BridgeError && (code === undefined || error.code === code);
}

/** The HTTP status of an HTTP-level answer with this code (500 for codes that are never one). */
export function httpStatusOf(code: ErrorCode): number {
  const entry: ErrorEntry = ERROR_CODES[code];
  return entry.http ?? 500;
}

/** A JSON-RPC error object with the bridge's code in `data.code`. */
export function jsonRpcErrorOf(
  code: ErrorCode,
  message: string,
  details?: Readonly<Record<string, unknown>>,
): { code: number; message: string; data: Record<string, unknown> } {
  return { code: ERROR_CODES[code].jsonRpc, message, data: { code, ...details } };
}

/** Maps any error to the process exit code of a CLI command. */
export function exitCodeFor(error: unknown): number {
  return error instanceof BridgeError ? ERROR_CODES[error.code].exit : 1;
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
