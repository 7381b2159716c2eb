import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { CALLBACK_PATH } from '../config/schema.js';
import { ERROR_CODES } from '../errors.js';
import { sendJsonRpcError } from '../server/json-rpc-error.js';
import type { AccessToken } from './access-token.js';

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
export function accessGuard(token: AccessToken): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    if (OPEN_ROUTES.has(`${req.method} ${req.path}`)) return next();
    const presented = bearerOf(req.headers.authorization);
    if (presented !== undefined && token.matches(presented)) return next();
    const code = presented === undefined ? 'ACCESS_TOKEN_REQUIRED' : 'ACCESS_TOKEN_INVALID';
    res.setHeader(
      'WWW-Authenticate',
      presented === undefined
        ? 'Bearer realm="mcp-bridge"'
        : 'Bearer realm="mcp-bridge", error="invalid_token"',
    );
    const what = presented === undefined ? 'needs the' : 'did not get the current';
    sendJsonRpcError(
      res,
      401,
      ERROR_CODES[code].jsonRpc,
      `mcp-bridge ${what} local access token. It is in ${token.file} (readable only by you); send it as "Authorization: Bearer <token>". Run "mcp-bridge clients" for ready-to-paste settings for Claude Code, Cursor, VS Code and the MCP Inspector; Claude Desktop through "mcp-bridge stdio" needs nothing.`,
      { code, tokenFile: token.file, help: 'mcp-bridge clients' },
    );
  };
}

function bearerOf(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  return match ? match[1] : '';
}
