import { randomBytes } from 'node:crypto';
import { localDaemonBase } from '../config/paths.js';
import { BridgeError, errorMessage } from '../errors.js';
import { accessTokenPath, proofMatches, readAccessToken } from './access-token.js';

/** A daemon a CLI command talks to, after it proved it knows the local access token. */
export interface LocalDaemon {
  readonly base: string;
  /** Headers for every request to it (the bearer token, unless the daemon runs with `"auth": "none"`). */
  readonly headers: Readonly<Record<string, string>>;
  readonly version: string | undefined;
  /** It proved it knows our token. False for a daemon that needs none (`"auth": "none"`, or older). */
  readonly verified: boolean;
}

export interface LocalDaemonTarget {
  readonly host: string;
  readonly port: number;
  readonly configDir: string;
}

/**
 * Finds the daemon on the configured port: undefined when nothing answers there. Something that
 * answers but cannot prove (HMAC of a fresh challenge) that it knows our token is never sent the
 * token: DAEMON_NOT_VERIFIED. That is what keeps a program squatting on the port from learning it,
 * or from handing `mcp-bridge auth` a URL to open.
 */
export async function findLocalDaemon(target: LocalDaemonTarget): Promise<LocalDaemon | undefined> {
  const base = localDaemonBase(target.host, target.port);
  const challenge = randomBytes(16).toString('base64url');
  let response: Response;
  try {
    response = await fetch(`${base}/healthz?challenge=${challenge}`, { signal: AbortSignal.timeout(3000) });
  } catch {
    return undefined;
  }
  let body: { ok?: unknown; version?: unknown; auth?: unknown; proof?: unknown };
  try {
    body = (await response.json()) as typeof body;
  } catch {
    body = {};
  }
  if (body.ok !== true) throw notVerified(base, 'it does not answer /healthz like mcp-bridge');
  const version = typeof body.version === 'string' ? body.version : undefined;
  // No token is sent, so nothing can leak; such a daemon is open to everyone anyway.
  if (body.auth !== 'token') return { base, headers: {}, version, verified: false };
  const token = readAccessToken(target.configDir);
  const file = accessTokenPath(target.configDir);
  if (!token) {
    throw new BridgeError(
      'ACCESS_TOKEN_REQUIRED',
      `the daemon at ${base} needs the local access token, but ${file} is missing or unreadable for this user; run this command as the user who runs the daemon`,
      { details: { tokenFile: file } },
    );
  }
  if (!proofMatches(token, challenge, body.proof)) {
    throw notVerified(base, `it could not prove it knows the access token in ${file}`);
  }
  return { base, headers: { authorization: `Bearer ${token}` }, version, verified: true };
}

/** findLocalDaemon, for commands that need a daemon: DAEMON_UNREACHABLE when none answers. */
export async function requireLocalDaemon(target: LocalDaemonTarget): Promise<LocalDaemon> {
  const daemon = await findLocalDaemon(target);
  if (daemon) return daemon;
  const base = localDaemonBase(target.host, target.port);
  throw new BridgeError(
    'DAEMON_UNREACHABLE',
    `no mcp-bridge daemon answers at ${base}; start it with "npm start" or "mcp-bridge start"`,
  );
}

/** GET a JSON document from the daemon with its headers. */
export async function getJson<T>(daemon: LocalDaemon, path: string, timeoutMs = 5000): Promise<T> {
  const response = await fetch(`${daemon.base}${path}`, {
    headers: daemon.headers,
    signal: AbortSignal.timeout(timeoutMs),
  });
  const body = (await response.json().catch((error: unknown) => {
    throw new BridgeError('DAEMON_UNREACHABLE', `the daemon's ${path} is not JSON: ${errorMessage(error)}`);
  })) as T & { error?: { message?: string } };
  if (!response.ok) {
    throw new BridgeError(
      'DAEMON_UNREACHABLE',
      `the daemon answered ${path} with HTTP ${response.status}: ${body.error?.message ?? ''}`,
    );
  }
  return body;
}

export function notVerified(base: string, why: string): BridgeError {
  return new BridgeError(
    'DAEMON_NOT_VERIFIED',
    `something answers at ${base}, but ${why}; the local access token was not sent to it. Is another program using the port? (check with: lsof -i :${new URL(base).port})`,
    { details: { url: base } },
  );
}
