import cors from 'cors';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { LOOPBACK_HOSTS } from '../config/schema.js';
import { sendJsonRpcError } from './json-rpc-error.js';

/** Browser origins allowed by default: loopback pages and the hosted Claude and ChatGPT apps. */
export const DEFAULT_ALLOWED_ORIGINS = [
  'http://localhost:*',
  'http://127.0.0.1:*',
  'http://[::1]:*',
  'https://localhost:*',
  'https://127.0.0.1:*',
  'https://[::1]:*',
  'https://claude.ai',
  'https://claude.com',
  'https://chatgpt.com',
  'https://chat.openai.com',
  'https://*.claudeusercontent.com',
  'https://*.openai.com',
] as const;

/** The host name of a Host header value, lower-cased, without the port; brackets kept for IPv6. */
export function hostnameOf(hostHeader: string): string {
  const value = hostHeader.trim().toLowerCase();
  if (value.startsWith('[')) {
    const end = value.indexOf(']');
    return end === -1 ? value : value.slice(0, end + 1);
  }
  const colon = value.indexOf(':');
  return colon === -1 ? value : value.slice(0, colon);
}

/**
 * Whether `origin` matches one of `patterns`. A pattern is `scheme://host[:port]`, where host may
 * start with `*.` (any subdomain, not the bare domain) and port may be `*` (any port, or none).
 */
export function isOriginAllowed(origin: string, patterns: readonly string[]): boolean {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  if (url.origin === 'null' || `${url.protocol}//${url.host}` !== origin.toLowerCase().replace(/\/$/, '')) {
    return false;
  }
  return patterns.some((pattern) => matchesPattern(url, pattern));
}

function matchesPattern(url: URL, pattern: string): boolean {
  const match = /^(https?):\/\/(\*\.)?([^/:]+|\[[^\]]+\])(?::(\*|\d+))?$/i.exec(pattern.trim());
  if (!match) return false;
  const [, scheme, wildcard, host, port] = match;
  if (url.protocol !== `${scheme!.toLowerCase()}:`) return false;
  const hostname = url.hostname.toLowerCase();
  const expected = host!.toLowerCase();
  const hostOk = wildcard ? hostname.endsWith(`.${expected}`) : hostname === expected;
  if (!hostOk) return false;
  if (port === '*') return true;
  return url.port === (port ?? '');
}

/** 403 for any request whose Host is not a loopback name or an explicitly allowed one (DNS rebinding). */
export function hostGuard(extraHosts: readonly string[]): RequestHandler {
  const allowed = new Set([...LOOPBACK_HOSTS, ...extraHosts.map((h) => h.toLowerCase())]);
  return (req: Request, res: Response, next: NextFunction) => {
    const host = req.headers.host;
    if (host && allowed.has(hostnameOf(host))) return next();
    sendJsonRpcError(
      res,
      403,
      -32600,
      `Forbidden: Host "${host ?? ''}" is not allowed; mcp-bridge only answers loopback names (add others with "allowedHosts")`,
    );
  };
}

/** 403 for a browser request from an origin outside the allowlist; non-browser clients send no Origin. */
export function originGuard(patterns: readonly string[]): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    const origin = req.headers.origin;
    if (origin === undefined || isOriginAllowed(origin, patterns)) return next();
    sendJsonRpcError(
      res,
      403,
      -32600,
      `Forbidden: Origin "${origin}" is not allowed (add it to "allowedOrigins" in the config to permit it)`,
    );
  };
}

/** CORS for allowed origins: answers preflights and exposes the session header to browser clients. */
export function corsForAllowedOrigins(patterns: readonly string[]): RequestHandler {
  return cors({
    origin: (origin, callback) => callback(null, origin === undefined || isOriginAllowed(origin, patterns)),
    methods: ['GET', 'POST', 'DELETE', 'OPTIONS'],
    allowedHeaders: [
      'Content-Type',
      'Accept',
      'Authorization',
      'Mcp-Session-Id',
      'MCP-Protocol-Version',
      'Last-Event-ID',
    ],
    exposedHeaders: ['Mcp-Session-Id', 'MCP-Protocol-Version', 'WWW-Authenticate'],
    maxAge: 600,
  });
}
