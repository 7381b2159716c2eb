import {
  InsufficientScopeError,
  ProtocolError,
  SdkError,
  SdkErrorCode,
  SdkHttpError,
  UnauthorizedError,
} from '@modelcontextprotocol/client';
import { redactSecrets } from '../config/redact.js';
import { BridgeError, errorMessage, isBridgeError } from '../errors.js';
import type { UpstreamErrorInfo, UpstreamExitInfo, UpstreamState } from './state.js';

/** Errors that retrying cannot fix: the upstream goes to `failed` at once. */
export function isRetryable(error: unknown): boolean {
  const known = findBridgeError(error);
  return !(known && PERMANENT.has(known.code));
}

/** The first BridgeError (with `code`, if given) in an error's cause chain: the SDK wraps what a transport threw. */
export function findBridgeError(error: unknown, code?: BridgeError['code']): BridgeError | undefined {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (isBridgeError(e, code)) return e;
  }
  return undefined;
}

const PERMANENT = new Set<string>([
  'COMMAND_NOT_FOUND',
  'CWD_NOT_FOUND',
  'NEEDS_AUTH',
  'AUTH_REJECTED',
  'SECRET_UNAVAILABLE',
]);

/**
 * The `lastError` of a snapshot, as /status shows it. The message is redacted once more: errors
 * built here already are, but one that comes straight from the SDK may quote what a server sent.
 */
export function errorInfo(error: unknown): UpstreamErrorInfo {
  return {
    code: isBridgeError(error) ? error.code : 'INTERNAL',
    message: redactSecrets(errorMessage(error)),
    at: Date.now(),
  };
}

export function describeExit(exit: Pick<UpstreamExitInfo, 'code' | 'signal'>): string {
  return exit.signal ? `killed by ${exit.signal}` : `exited with code ${exit.code}`;
}

/** Longest stderr excerpt an error message quotes. */
const STDERR_EXCERPT = 300;

/**
 * A line of the child's stderr, fit to quote in an error: secrets redacted (the upstream's own
 * `secrets` verbatim, and anything that looks like one), then cut. Redacting first means a cut can
 * never leave the head of a token too short to be recognized.
 */
export function stderrExcerpt(line: string, secrets: readonly string[] = []): string {
  return redactSecrets(line, secrets).slice(0, STDERR_EXCERPT);
}

/**
 * The connection ended; says how the process ended and what it last wrote to stderr (redacted:
 * the message reaches the log, /status and clients).
 */
export function closedError(
  name: string,
  when: string,
  lastExit: UpstreamExitInfo | undefined,
  lastStderrLine: string | undefined,
  secrets: readonly string[] = [],
): BridgeError {
  const how = lastExit ? `: ${describeExit(lastExit)}` : '';
  const stderr = lastStderrLine ? ` (last stderr line: ${stderrExcerpt(lastStderrLine, secrets)})` : '';
  return new BridgeError(
    'UPSTREAM_CLOSED',
    `upstream "${name}" closed the connection ${when}${how}${stderr}`,
    {
      details: { upstream: name },
    },
  );
}

/** A call that could not be routed because the upstream is not ready. */
export function notReadyError(
  name: string,
  state: UpstreamState,
  lastError: UpstreamErrorInfo | undefined,
  waitedMs?: number,
): BridgeError {
  const waited = waitedMs === undefined ? '' : ` after waiting ${waitedMs} ms`;
  const last = lastError ? `; last error: ${lastError.message}` : '';
  const hint = state === 'needs_auth' ? `; run \`npm run auth -- ${name}\` to log in` : '';
  return new BridgeError(
    'UPSTREAM_NOT_READY',
    `upstream "${name}" is not ready (state: ${state})${waited}${last}${hint}`,
    { details: { upstream: name, state } },
  );
}

/** HTTP auth failures of the SDK transports, as errors that say what to do. */
export function authError(name: string, error: unknown): BridgeError | undefined {
  const login = `run \`npm run auth -- ${name}\``;
  if (
    error instanceof UnauthorizedError ||
    (error instanceof SdkHttpError && error.code === SdkErrorCode.ClientHttpAuthentication)
  ) {
    return new BridgeError(
      'NEEDS_AUTH',
      `upstream "${name}" rejected the stored login (HTTP 401); ${login}`,
      {
        cause: error,
        details: { upstream: name, command: `npm run auth -- ${name}` },
      },
    );
  }
  if (error instanceof InsufficientScopeError) {
    const scope = error.requiredScope ? ` "${error.requiredScope}"` : '';
    return new BridgeError(
      'INSUFFICIENT_SCOPE',
      `upstream "${name}" needs more permission (scope${scope}) for this request; ${login} to grant it`,
      { cause: error, details: { upstream: name, scope: error.requiredScope } },
    );
  }
  if (error instanceof SdkHttpError && (error.status === 401 || error.status === 403)) {
    return new BridgeError(
      'AUTH_REJECTED',
      `upstream "${name}" refused the request (HTTP ${error.status}): its credentials do not allow it; check the Authorization header configured for it, or log in again with \`npm run auth -- ${name}\``,
      { cause: error, details: { upstream: name, status: error.status } },
    );
  }
  return undefined;
}

/** Maps an SDK failure of a call; the upstream's own JSON-RPC errors pass through unchanged. */
export function callError(
  name: string,
  error: unknown,
  method: string,
  timeoutMs: number,
  lastExit: UpstreamExitInfo | undefined,
): unknown {
  if (error instanceof ProtocolError) return error;
  const auth = authError(name, error);
  if (auth) return auth;
  if (error instanceof SdkError && error.code === SdkErrorCode.RequestTimeout) {
    return new BridgeError(
      'UPSTREAM_TIMEOUT',
      `upstream "${name}" did not answer ${method} within ${timeoutMs} ms`,
      {
        cause: error,
        details: { upstream: name, timeoutMs },
      },
    );
  }
  if (error instanceof SdkError && error.code === SdkErrorCode.ConnectionClosed) {
    const how = lastExit ? ` (${describeExit(lastExit)})` : '';
    return new BridgeError(
      'UPSTREAM_CLOSED',
      `upstream "${name}" closed the connection during ${method}${how}; the call may or may not have run`,
      { cause: error, details: { upstream: name } },
    );
  }
  return error;
}

/**
 * Maps a failure during spawn, handshake or listing. Every message is redacted with the upstream's
 * `secrets`: a spawn error can quote the command line, a handshake error what the server said.
 */
export function startError(
  name: string,
  error: unknown,
  lastExit: UpstreamExitInfo | undefined,
  lastStderrLine: string | undefined,
  secrets: readonly string[] = [],
): unknown {
  const known = findBridgeError(error);
  if (known) return redactedCopy(known, secrets);
  const auth = authError(name, error);
  // Without the scope to even list tools, the upstream cannot start: a login with more scope can fix it.
  if (isBridgeError(auth, 'INSUFFICIENT_SCOPE')) {
    return new BridgeError('NEEDS_AUTH', auth.message, { cause: error, details: auth.details });
  }
  if (auth) return auth;
  if (error instanceof SdkError && error.code === SdkErrorCode.ConnectionClosed) {
    return closedError(name, 'during start-up', lastExit, lastStderrLine, secrets);
  }
  return new BridgeError(
    'HANDSHAKE_FAILED',
    `upstream "${name}" failed during start-up: ${redactSecrets(errorMessage(error), secrets)}`,
    {
      cause: error,
      details: { upstream: name },
    },
  );
}

/** `error` itself when its message holds no secret, else the same error with the message redacted. */
function redactedCopy(error: BridgeError, secrets: readonly string[]): BridgeError {
  const message = redactSecrets(error.message, secrets);
  if (message === error.message) return error;
  // No cause: it would carry the unredacted message along to whoever logs the chain.
  return new BridgeError(error.code, message, { details: error.details });
}
