import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { CALLBACK_PATH } from '../config/schema.js';
import { sendHttpError } from '../server/http-error.js';
import { type AccessToken, isSessionCredential } from './access-token.js';

/**
 * Routes that work without the token: the liveness probe (it also answers the token challenge),
 * and the OAuth callback, which the browser reaches by the authorization server's redirect and so
 * cannot carry a header; it only completes a login the daemon itself started, matched by `state`.
 */
const OPEN_ROUTES = new Set([`GET /healthz`, `GET ${CALLBACK_PATH}`, `HEAD /healthz`]);

/**
 * 401 for every request without `Authorization: Bearer <local access token>`. An allowed browser
 * origin never replaces the token: CORS only decides whether a page may read the answer.
 */
export interface AccessGuardOptions {
  /** The MCP endpoint: the only path where a session credential counts. */
  readonly mcpPath?: string | undefined;
  /** Whether `id` is an open 2025 session: only those accept a session credential. */
  readonly knownSession?: ((id: string) => boolean) | undefined;
  /** A request passed (the connection limit keeps authenticated connections). */
  readonly onAuthenticated?: ((req: Request) => void) | undefined;
  /** The status page's own way in (src/server/page): a page session, never the access token. */
  readonly page?: PageAccess | undefined;
}

/** What the guard asks the status page; it never applies to the MCP endpoint. */
export interface PageAccess {
  /** Routes anyone may reach: the one-time login link, the page's script and stylesheet, the error docs. */
  readonly isOpen: (method: string, path: string) => boolean;
  /** The request carries a page session good for its path (the page's own routes only). */
  readonly admits: (req: Request) => boolean;
  /** A navigation with only the page cookie: let through to the empty shell, not counted as the owner's. */
  readonly shell: (req: Request) => boolean;
  /** Answers a refused request itself (a browser gets "how to get in"); false leaves it to the guard. */
  readonly refuse: (req: Request, res: Response) => boolean;
}

export function accessGuard(token: AccessToken, options: AccessGuardOptions = {}): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    if (OPEN_ROUTES.has(`${req.method} ${req.path}`) || options.page?.isOpen(req.method, req.path)) {
      return next();
    }
    if (passesAccessToken(token, options, req)) return next();
    if (options.page && req.path !== options.mcpPath) {
      if (options.page.admits(req)) {
        options.onAuthenticated?.(req);
        return next();
      }
      if (options.page.shell(req)) return next();
      if (options.page.refuse(req, res)) return;
    }
    const presented = bearerOf(req.headers.authorization);
    const code = presented === undefined ? 'ACCESS_TOKEN_REQUIRED' : 'ACCESS_TOKEN_INVALID';
    res.setHeader(
      'WWW-Authenticate',
      presented === undefined
        ? 'Bearer realm="mcp-bridge"'
        : 'Bearer realm="mcp-bridge", error="invalid_token"',
    );
    const what = presented === undefined ? 'needs the' : 'did not get the current';
    // A web page (any Origin) is not told where the token lives: the path names the user.
    const where = req.headers.origin === undefined ? ` It is in ${token.file} (readable only by you);` : '';
    sendHttpError(
      res,
      code,
      `mcp-bridge ${what} local access token.${where} send it as "Authorization: Bearer <token>". Run "mcp-bridge clients" for ready-to-paste settings for Claude Code, Cursor, VS Code and the MCP Inspector; Claude Desktop through "mcp-bridge stdio" needs nothing.`,
      {
        details: {
          ...(req.headers.origin === undefined ? { tokenFile: token.file } : {}),
          help: 'mcp-bridge clients',
        },
      },
    );
  };
}

/** The guard's check alone (the hot path runs it before express): true, and `onAuthenticated`, on a pass. */
export function passesAccessToken(
  token: AccessToken,
  options: AccessGuardOptions,
  req: Pick<Request, 'headers' | 'path'>,
): boolean {
  const presented = bearerOf(req.headers.authorization);
  if (presented === undefined || !accepted(token, options, presented, req)) return false;
  options.onAuthenticated?.(req as Request);
  return true;
}

function accepted(
  token: AccessToken,
  options: AccessGuardOptions,
  presented: string,
  req: Pick<Request, 'headers' | 'path'>,
): boolean {
  if (!isSessionCredential(presented)) return token.matches(presented);
  const header = req.headers['mcp-session-id'];
  const sessionId = Array.isArray(header) ? header[0] : header;
  return (
    req.path === options.mcpPath &&
    sessionId !== undefined &&
    options.knownSession?.(sessionId) === true &&
    token.matchesSession(presented, sessionId)
  );
}

export function bearerOf(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  return match ? match[1] : '';
}
