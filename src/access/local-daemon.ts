import { randomBytes } from 'node:crypto';
import { localDaemonBase } from '../config/paths.js';
import { BridgeError, errorMessage } from '../errors.js';
import { accessTokenPath, proofMatches, readAccessToken } from './access-token.js';

/** A daemon a CLI command talks to, after it proved it knows the local access token. */
export interface LocalDaemon {
  readonly base: string;
  readonly version: string | undefined;
  /** It proved it knows our token. False for a daemon that needs none (`"auth": "none"`, or older). */
  readonly verified: boolean;
  /**
   * A request to it. With a token, every request is preceded by a fresh proof: a program that took
   * the port since the last one (the daemon stopped mid-login, say) gets DAEMON_NOT_VERIFIED
   * instead of the token.
   */
  fetch(path: string, init?: RequestInit): Promise<Response>;
}

export interface LocalDaemonTarget {
  readonly host: string;
  readonly port: number;
  readonly configDir: string;
}

/**
 * Finds the daemon on the configured port: undefined when nothing answers there. Something that
 * answers but cannot prove (HMAC of a fresh challenge and the port) that it knows our token is
 * never sent the token: DAEMON_NOT_VERIFIED. That is what keeps a program squatting on the port
 * from learning it, or from handing `mcp-bridge auth` a URL to open.
 */
export async function findLocalDaemon(target: LocalDaemonTarget): Promise<LocalDaemon | undefined> {
  const base = localDaemonBase(target.host, target.port);
  const first = await prove(base, target);
  if (first === 'unreachable') return undefined;
  const { version, token } = first;
  return {
    base,
    version,
    verified: token !== undefined,
    async fetch(path, init = {}) {
      let bearer = token;
      if (token !== undefined) {
        const again = await prove(base, target);
        if (again === 'unreachable' || again.token === undefined) {
          throw notVerified(base, 'it stopped proving it knows the access token');
        }
        bearer = again.token;
      }
      const headers = new Headers(init.headers);
      if (bearer) headers.set('authorization', `Bearer ${bearer}`);
      return fetch(`${base}${path}`, { ...init, headers });
    },
  };
}

/** One /healthz challenge: the token to send (undefined for a daemon that asks for none). */
async function prove(
  base: string,
  target: LocalDaemonTarget,
): Promise<'unreachable' | { version: string | undefined; token: string | undefined }> {
  const challenge = randomBytes(16).toString('base64url');
  let response: Response;
  try {
    response = await fetch(`${base}/healthz?challenge=${challenge}`, { signal: AbortSignal.timeout(3000) });
  } catch {
    return 'unreachable';
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
  if (body.auth !== 'token') return { version, token: undefined };
  const token = readAccessToken(target.configDir);
  const file = accessTokenPath(target.configDir);
  if (!token) {
    throw new BridgeError(
      'ACCESS_TOKEN_REQUIRED',
      `the daemon at ${base} needs the local access token, but ${file} is missing or unreadable for this user; run this command as the user who runs the daemon`,
      { details: { tokenFile: file } },
    );
  }
  if (!proofMatches(token, Number(new URL(base).port), challenge, body.proof)) {
    throw notVerified(base, `it could not prove it knows the access token in ${file}`);
  }
  return { version, token };
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
  const response = await daemon.fetch(path, { signal: AbortSignal.timeout(timeoutMs) });
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

/**
 * For commands that act on what the daemon answers (open a browser on its URL, revoke, log in):
 * a daemon that did not prove it knows the token, while the config says it needs one, is
 * DAEMON_NOT_VERIFIED (a squatter can claim `"auth": "none"`).
 */
export function assertProven(daemon: LocalDaemon, auth: 'token' | 'none'): void {
  if (!daemon.verified && auth === 'token') {
    throw notVerified(daemon.base, 'it does not ask for the local access token although the config does');
  }
}

export function notVerified(base: string, why: string): BridgeError {
  return new BridgeError(
    'DAEMON_NOT_VERIFIED',
    `something answers at ${base}, but ${why}; the local access token was not sent to it. Is another program using the port? (check with: lsof -i :${new URL(base).port})`,
    { details: { url: base } },
  );
}
