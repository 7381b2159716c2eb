import * as oauth from 'oauth4webapi';
import { BridgeError, errorMessage } from '../errors.js';
import { VERSION } from '../version.js';
import { HTTP_TIMEOUT_MS, requestOptions } from './oauth-http.js';

/**
 * Where an MCP server's authorization server is, and what it supports: the 401 challenge, the
 * protected resource metadata (RFC 9728) and the authorization server metadata (RFC 8414, OpenID).
 */

/** What a 401 (or 403) said in `WWW-Authenticate: Bearer …`. */
export interface Challenge {
  readonly resourceMetadata?: string | undefined;
  readonly scope?: string | undefined;
  readonly error?: string | undefined;
}

export interface Discovery {
  /** The resource identifier to send as `resource` (from the protected resource metadata). */
  readonly resource: string;
  readonly issuer: string;
  readonly authServer: oauth.AuthorizationServer;
  /** `scopes_supported` of the protected resource metadata. */
  readonly scopesSupported?: readonly string[] | undefined;
}

/** Parses the Bearer challenge parameters of a `WWW-Authenticate` header. */
export function parseChallenge(header: string | null): Challenge | undefined {
  if (!header || !/^\s*bearer\b/i.test(header)) return undefined;
  const params: Record<string, string> = {};
  for (const match of header.matchAll(/([a-zA-Z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))/g)) {
    const key = match[1];
    if (key) params[key.toLowerCase()] = (match[2] ?? match[3] ?? '').replace(/\\(.)/g, '$1');
  }
  return { resourceMetadata: params.resource_metadata, scope: params.scope, error: params.error };
}

/**
 * Sends an unauthenticated `initialize` to learn whether the server wants OAuth and what its
 * challenge says. Resolves undefined when the server did not answer 401.
 */
export async function probeChallenge(serverUrl: string): Promise<Challenge | undefined> {
  const response = await fetch(serverUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: {
        protocolVersion: '2025-06-18',
        capabilities: {},
        clientInfo: { name: 'mcp-bridge', version: VERSION },
      },
    }),
    signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
  }).catch((error: unknown) => {
    throw new BridgeError('OAUTH_DISCOVERY_FAILED', `cannot reach ${serverUrl}: ${errorMessage(error)}`, {
      cause: error,
    });
  });
  await response.body?.cancel().catch(() => {});
  if (response.status !== 401) return undefined;
  return parseChallenge(response.headers.get('www-authenticate')) ?? {};
}

/** Finds the protected resource metadata, then the authorization server metadata. */
export async function discover(serverUrl: string, challenge: Challenge | undefined): Promise<Discovery> {
  const server = new URL(serverUrl);
  const prm = await fetchResourceMetadata(server, challenge?.resourceMetadata);
  const issuer = prm?.authorizationServer ?? server.origin;
  // 2025-03-26 servers without any metadata use fixed endpoints at their origin (and PKCE).
  const authServer = await fetchAuthServerMetadata(issuer, prm === undefined);
  if (!authServer.code_challenge_methods_supported?.includes('S256')) {
    throw new BridgeError(
      'OAUTH_UNSUPPORTED',
      `the authorization server ${issuer} does not list S256 in code_challenge_methods_supported; refusing to log in without PKCE`,
      { details: { issuer } },
    );
  }
  if (!authServer.authorization_endpoint || !authServer.token_endpoint) {
    throw new BridgeError(
      'OAUTH_DISCOVERY_FAILED',
      `the metadata of the authorization server ${issuer} has no authorization_endpoint or token_endpoint`,
      { details: { issuer } },
    );
  }
  return {
    resource: prm?.resource ?? canonicalResource(server),
    issuer: authServer.issuer,
    authServer,
    scopesSupported: prm?.scopesSupported,
  };
}

/** RFC 8707 §2: an absolute URI without a fragment. */
function canonicalResource(url: URL): string {
  const u = new URL(url);
  u.hash = '';
  return u.href;
}

/** A metadata document's response, or the HTTP status it answered with instead (its body dropped). */
async function fetchMetadata(url: string, what: string): Promise<Response | number> {
  let response: Response;
  try {
    response = await fetch(url, { headers: { accept: 'application/json' }, ...requestOptions(url) });
  } catch (error) {
    throw new BridgeError(
      'OAUTH_DISCOVERY_FAILED',
      `cannot fetch the ${what} ${url}: ${errorMessage(error)}`,
      {
        cause: error,
      },
    );
  }
  if (response.ok) return response;
  await response.body?.cancel().catch(() => {});
  return response.status;
}

interface ResourceMetadata {
  readonly resource: string;
  readonly authorizationServer: string;
  readonly scopesSupported?: string[] | undefined;
}

async function fetchResourceMetadata(server: URL, fromChallenge: string | undefined) {
  const path = server.pathname === '/' ? '' : server.pathname.replace(/\/$/, '');
  const candidates = fromChallenge
    ? [fromChallenge]
    : [
        ...(path ? [`${server.origin}/.well-known/oauth-protected-resource${path}`] : []),
        `${server.origin}/.well-known/oauth-protected-resource`,
      ];
  for (const url of candidates) {
    const response = await fetchMetadata(url, 'protected resource metadata');
    if (typeof response === 'number') {
      if (fromChallenge) {
        throw new BridgeError(
          'OAUTH_DISCOVERY_FAILED',
          `the server's 401 points to protected resource metadata at ${url}, which answered HTTP ${response}`,
        );
      }
      continue;
    }
    return parseResourceMetadata(url, server, await response.text());
  }
  // No RFC 9728 document: servers of the 2025-03-26 revision use their own origin as the issuer.
  return undefined;
}

function parseResourceMetadata(url: string, server: URL, text: string): ResourceMetadata {
  const bad = (why: string) =>
    new BridgeError('OAUTH_DISCOVERY_FAILED', `the protected resource metadata at ${url} is invalid: ${why}`);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw bad('not JSON');
  }
  if (typeof doc !== 'object' || doc === null) throw bad('not a JSON object');
  const {
    resource,
    authorization_servers: servers,
    scopes_supported: scopes,
  } = doc as Record<string, unknown>;
  if (typeof resource !== 'string') throw bad('no "resource"');
  if (!Array.isArray(servers) || typeof servers[0] !== 'string') throw bad('no "authorization_servers"');
  // RFC 9728 §3.3 / MCP: the metadata must be about this server (same origin, a prefix of its path).
  let named: URL;
  try {
    named = new URL(resource);
  } catch {
    throw bad(`"resource" is not a URL: ${resource}`);
  }
  const prefix = named.pathname.replace(/\/$/, '');
  if (
    named.origin !== server.origin ||
    !(server.pathname === prefix || server.pathname.startsWith(`${prefix}/`))
  ) {
    throw bad(`it describes ${resource}, not ${server.href}`);
  }
  return {
    resource,
    authorizationServer: servers[0],
    scopesSupported: Array.isArray(scopes) ? scopes.filter((s) => typeof s === 'string') : undefined,
  };
}

/** RFC 8414 first, then both OpenID Connect forms (path inserted, then appended). */
async function fetchAuthServerMetadata(
  issuer: string,
  allowDefaults: boolean,
): Promise<oauth.AuthorizationServer> {
  const url = new URL(issuer);
  const path = url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '');
  const candidates = path
    ? [
        `${url.origin}/.well-known/oauth-authorization-server${path}`,
        `${url.origin}/.well-known/openid-configuration${path}`,
        `${url.origin}${path}/.well-known/openid-configuration`,
      ]
    : [
        `${url.origin}/.well-known/oauth-authorization-server`,
        `${url.origin}/.well-known/openid-configuration`,
      ];
  const tried: string[] = [];
  for (const candidate of candidates) {
    const response = await fetchMetadata(candidate, 'authorization server metadata');
    if (typeof response === 'number') {
      tried.push(`${candidate} (HTTP ${response})`);
      continue;
    }
    try {
      return await oauth.processDiscoveryResponse(url, response);
    } catch (error) {
      throw new BridgeError(
        'OAUTH_DISCOVERY_FAILED',
        `the authorization server metadata at ${candidate} is invalid: ${errorMessage(error)}`,
        { cause: error, details: { issuer } },
      );
    }
  }
  if (allowDefaults && tried.every((t) => t.endsWith('(HTTP 404)'))) {
    return {
      issuer: url.origin,
      authorization_endpoint: `${url.origin}/authorize`,
      token_endpoint: `${url.origin}/token`,
      registration_endpoint: `${url.origin}/register`,
      code_challenge_methods_supported: ['S256'],
    };
  }
  throw new BridgeError(
    'OAUTH_DISCOVERY_FAILED',
    `no authorization server metadata found for ${issuer}; tried ${tried.join(', ')}`,
    { details: { issuer } },
  );
}
