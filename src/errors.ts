// JSON-RPC codes (kept as numbers so the CLI can load this file without the SDK).
const INVALID_PARAMS = -32602;
const INTERNAL_ERROR = -32603;
/** Implementation-defined server error: the upstream cannot serve the request. */
const UPSTREAM_ERROR = -32001;

/**
 * Every error the bridge raises on purpose has one of these codes. docs/errors.md explains each one;
 * the JSON-RPC code and the CLI exit code are derived here and nowhere else.
 */
export const ERROR_CODES = {
  CONFIG_NOT_FOUND: { jsonRpc: INTERNAL_ERROR, exit: 2 },
  CONFIG_INVALID: { jsonRpc: INTERNAL_ERROR, exit: 2 },
  USAGE: { jsonRpc: INVALID_PARAMS, exit: 2 },
  COMMAND_NOT_FOUND: { jsonRpc: UPSTREAM_ERROR, exit: 1 },
  CWD_NOT_FOUND: { jsonRpc: UPSTREAM_ERROR, exit: 1 },
  SPAWN_FAILED: { jsonRpc: UPSTREAM_ERROR, exit: 1 },
  HANDSHAKE_FAILED: { jsonRpc: UPSTREAM_ERROR, exit: 1 },
  UPSTREAM_NOT_READY: { jsonRpc: UPSTREAM_ERROR, exit: 1 },
  UPSTREAM_CLOSED: { jsonRpc: UPSTREAM_ERROR, exit: 1 },
  UPSTREAM_TIMEOUT: { jsonRpc: UPSTREAM_ERROR, exit: 1 },
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
  DAEMON_UNREACHABLE: { jsonRpc: INTERNAL_ERROR, exit: 1 },
  INTERNAL: { jsonRpc: INTERNAL_ERROR, exit: 1 },
} as const;

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

/** Maps any error to the process exit code of a CLI command. */
export function exitCodeFor(error: unknown): number {
  return error instanceof BridgeError ? ERROR_CODES[error.code].exit : 1;
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
