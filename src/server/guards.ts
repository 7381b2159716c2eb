import cors from 'cors';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { LOOPBACK_HOSTS } from '../config/schema.js';
import { sendHttpError } from './http-error.js';

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

/** Whether a Host header names a loopback name or an explicitly allowed one. */
export function hostAllowed(extraHosts: readonly string[]): (host: string | undefined) => boolean {
  const allowed = new Set([...LOOPBACK_HOSTS, ...extraHosts.map((h) => h.toLowerCase())]);
  return (host) => host !== undefined && host !== '' && allowed.has(hostnameOf(host));
}

/** 403 for any request whose Host is not a loopback name or an explicitly allowed one (DNS rebinding). */
export function hostGuard(extraHosts: readonly string[]): RequestHandler {
  const allowed = hostAllowed(extraHosts);
  return (req: Request, res: Response, next: NextFunction) => {
    const host = req.headers.host;
    if (allowed(host)) return next();
    sendHttpError(
      res,
      'HOST_FORBIDDEN',
      `Forbidden: Host "${host ?? ''}" is not allowed; mcp-bridge only answers loopback names (add others with "allowedHosts")`,
    );
  };
}

/** 403 for a browser request from an origin outside the allowlist; non-browser clients send no Origin. */
export function originGuard(patterns: readonly string[]): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    const origin = req.headers.origin;
    if (origin === undefined || isOriginAllowed(origin, patterns)) return next();
    sendHttpError(
      res,
      'ORIGIN_FORBIDDEN',
      `Forbidden: Origin "${origin}" is not allowed (add it to "allowedOrigins" in the config to permit it)`,
    );
  };
}

/**
 * Request headers a browser MCP client sends: the 2025 set, and the 2026-07-28 (SEP-2243) standard
 * headers `Mcp-Method` and `Mcp-Name` that the SDK's Streamable HTTP client adds to every request.
 */
export const CORS_REQUEST_HEADERS = [
  'Content-Type',
  'Accept',
  'Authorization',
  'Mcp-Session-Id',
  'MCP-Protocol-Version',
  'Mcp-Method',
  'Mcp-Name',
  'Last-Event-ID',
] as const;

/** What a browser client must be able to read from a response. */
export const CORS_EXPOSED_HEADERS = ['Mcp-Session-Id', 'MCP-Protocol-Version', 'WWW-Authenticate'] as const;

/** `Mcp-Param-{Name}` (SEP-2243): a header token after the prefix, as RFC 9110 allows in a field name. */
const PARAM_HEADER = /^mcp-param-[A-Za-z0-9!#$%&'*+.^_`|~-]+$/i;

/**
 * The headers a preflight may be granted: the fixed list, plus every `Mcp-Param-*` it asks for.
 * Those names come from each tool's `x-mcp-header`, so they cannot be listed in advance, and
 * Access-Control-Allow-Headers has no wildcard for a prefix ("*" would allow every header, and is
 * not honoured for Authorization anyway).
 */
export function allowedRequestHeaders(requested: string | undefined): string[] {
  const params = new Map<string, string>();
  for (const name of (requested ?? '').split(',').map((h) => h.trim())) {
    if (PARAM_HEADER.test(name) && !params.has(name.toLowerCase())) params.set(name.toLowerCase(), name);
  }
  return [...CORS_REQUEST_HEADERS, ...params.values()];
}

/** CORS for allowed origins: answers preflights and exposes the session header to browser clients. */
export function corsForAllowedOrigins(patterns: readonly string[]): RequestHandler {
  const handler = cors((req, callback) =>
    callback(null, {
      origin: (origin, done) => done(null, origin === undefined || isOriginAllowed(origin, patterns)),
      methods: ['GET', 'POST', 'DELETE', 'OPTIONS'],
      allowedHeaders: allowedRequestHeaders(req.headers['access-control-request-headers']),
      exposedHeaders: [...CORS_EXPOSED_HEADERS],
      maxAge: 600,
    }),
  );
  return (req: Request, res: Response, next: NextFunction) => {
    // The answer depends on the headers asked for: a cache must not reuse it for other ones.
    if (req.method === 'OPTIONS') res.vary('Access-Control-Request-Headers');
    handler(req, res, next);
  };
}
