import * as oauth from 'oauth4webapi';
import { isLoopbackHostname } from '../config/schema.js';
import { BridgeError, errorMessage } from '../errors.js';
import { VERSION } from '../version.js';

/**
 * The stateless OAuth 2.1 steps of an MCP client, on oauth4webapi: discovery (RFC 9728, RFC 8414,
 * OpenID), registration (RFC 7591), the PKCE authorization request, the code exchange with `state`
 * and `iss` (RFC 9207) checks, and refresh, always with the RFC 8707 `resource`. Nothing here knows
 * about upstreams, files or HTTP servers.
 */

const HTTP_TIMEOUT_MS = 15_000;

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

export interface ClientSettings {
  readonly clientId?: string | undefined;
  readonly clientSecret?: string | undefined;
  readonly clientMetadataUrl?: string | undefined;
}

export interface ResolvedClient {
  readonly client: oauth.Client;
  readonly auth: oauth.ClientAuth;
  /** How the client id was obtained. */
  readonly source: 'config' | 'metadata-document' | 'registered';
}

export interface TokenSet {
  readonly accessToken: string;
  readonly tokenType: string;
  readonly refreshToken?: string | undefined;
  /** Absolute expiry, epoch ms. */
  readonly expiresAt?: number | undefined;
  readonly scope?: string | undefined;
}

function requestOptions(url: string | URL): { [oauth.allowInsecureRequests]?: boolean; signal: AbortSignal } {
  const u = new URL(url);
  // Plain http is allowed for loopback only (local development servers, tests).
  if (u.protocol === 'http:' && !isLoopbackHostname(u.hostname)) {
    throw new BridgeError(
      'OAUTH_UNSUPPORTED',
      `refusing to send OAuth requests over plain http to ${u.origin}; OAuth needs https (http is allowed for localhost only)`,
    );
  }
  return {
    signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
    ...(u.protocol === 'http:' ? { [oauth.allowInsecureRequests]: true } : {}),
  };
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
    let response: Response;
    try {
      response = await fetch(url, { headers: { accept: 'application/json' }, ...requestOptions(url) });
    } catch (error) {
      throw new BridgeError(
        'OAUTH_DISCOVERY_FAILED',
        `cannot fetch the protected resource metadata ${url}: ${errorMessage(error)}`,
        { cause: error },
      );
    }
    if (!response.ok) {
      await response.body?.cancel().catch(() => {});
      if (fromChallenge) {
        throw new BridgeError(
          'OAUTH_DISCOVERY_FAILED',
          `the server's 401 points to protected resource metadata at ${url}, which answered HTTP ${response.status}`,
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
    let response: Response;
    try {
      response = await fetch(candidate, {
        headers: { accept: 'application/json' },
        ...requestOptions(candidate),
      });
    } catch (error) {
      throw new BridgeError(
        'OAUTH_DISCOVERY_FAILED',
        `cannot fetch the authorization server metadata ${candidate}: ${errorMessage(error)}`,
        { cause: error },
      );
    }
    if (!response.ok) {
      await response.body?.cancel().catch(() => {});
      tried.push(`${candidate} (HTTP ${response.status})`);
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

/** A client from the config, a Client ID Metadata Document, or dynamic registration. */
export async function resolveClient(
  discovery: Discovery,
  settings: ClientSettings,
  redirectUri: string,
  registered:
    | { clientId: string; clientSecret?: string | undefined; tokenEndpointAuthMethod: string }
    | undefined,
): Promise<ResolvedClient & { registration?: { clientSecret?: string; tokenEndpointAuthMethod: string } }> {
  const as = discovery.authServer;
  if (settings.clientId) {
    const method = settings.clientSecret
      ? as.token_endpoint_auth_methods_supported?.includes('client_secret_basic') === false
        ? 'client_secret_post'
        : 'client_secret_basic'
      : 'none';
    return withAuth(
      { client_id: settings.clientId, token_endpoint_auth_method: method },
      settings.clientSecret,
      'config',
    );
  }
  if (settings.clientMetadataUrl && as.client_id_metadata_document_supported === true) {
    return withAuth(
      { client_id: settings.clientMetadataUrl, token_endpoint_auth_method: 'none' },
      undefined,
      'metadata-document',
    );
  }
  if (registered) {
    return withAuth(
      { client_id: registered.clientId, token_endpoint_auth_method: registered.tokenEndpointAuthMethod },
      registered.clientSecret,
      'registered',
    );
  }
  if (!as.registration_endpoint) {
    throw new BridgeError(
      'OAUTH_UNSUPPORTED',
      `the authorization server ${discovery.issuer} does not support dynamic client registration; register a client there and set "oauth": {"clientId": …} for this server in the config`,
      { details: { issuer: discovery.issuer } },
    );
  }
  let client: Record<string, unknown>;
  try {
    const response = await oauth.dynamicClientRegistrationRequest(
      as,
      {
        client_name: 'mcp-bridge',
        redirect_uris: [redirectUri],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
        application_type: 'native',
      },
      requestOptions(as.registration_endpoint),
    );
    client = await registrationResponse(response);
  } catch (error) {
    throw new BridgeError(
      'OAUTH_REGISTRATION_FAILED',
      `dynamic client registration at ${as.registration_endpoint} failed: ${describeOAuthError(error)}; set "oauth": {"clientId": …} in the config to use a pre-registered client`,
      { cause: error, details: { issuer: discovery.issuer } },
    );
  }
  const secret = typeof client.client_secret === 'string' ? client.client_secret : undefined;
  const method = String(client.token_endpoint_auth_method ?? (secret ? 'client_secret_basic' : 'none'));
  const resolved = withAuth(
    { client_id: String(client.client_id), token_endpoint_auth_method: method },
    secret,
    'registered',
  );
  return {
    ...resolved,
    registration: { ...(secret ? { clientSecret: secret } : {}), tokenEndpointAuthMethod: method },
  };
}

function withAuth(
  client: oauth.Client,
  secret: string | undefined,
  source: ResolvedClient['source'],
): ResolvedClient {
  const method = client.token_endpoint_auth_method;
  const auth =
    secret === undefined || method === 'none'
      ? oauth.None()
      : method === 'client_secret_post'
        ? oauth.ClientSecretPost(secret)
        : clientSecretBasic(secret);
  return { client, auth, source };
}

/**
 * RFC 6749 §2.3.1 basic authentication with form encoding of the id and secret. oauth4webapi also
 * escapes characters such as "-" that form encoding leaves alone, which some servers do not decode.
 */
function clientSecretBasic(secret: string): oauth.ClientAuth {
  const encode = (value: string) => new URLSearchParams({ v: value }).toString().slice(2);
  return (_as, client, _body, headers) => {
    const credentials = `${encode(client.client_id)}:${encode(secret)}`;
    headers.set('authorization', `Basic ${Buffer.from(credentials).toString('base64')}`);
  };
}

/**
 * The registration response, read leniently: only `client_id` is required (servers differ on the
 * optional fields, e.g. `client_secret_expires_at`, and a login should not fail over them).
 */
async function registrationResponse(response: Response): Promise<Record<string, unknown>> {
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`HTTP ${response.status}, not JSON: ${text.slice(0, 200)}`);
  }
  const record = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  if (!response.ok) {
    const description = typeof record.error_description === 'string' ? ` (${record.error_description})` : '';
    throw new Error(`HTTP ${response.status}: ${String(record.error ?? 'error')}${description}`);
  }
  if (typeof record.client_id !== 'string' || record.client_id === '') {
    throw new Error(`HTTP ${response.status} without a client_id`);
  }
  return record;
}

export interface AuthorizationRequest {
  readonly url: string;
  readonly state: string;
  readonly codeVerifier: string;
}

/** The PKCE (S256) authorization URL, with `state` and `resource`. */
export async function authorizationRequest(
  discovery: Discovery,
  client: oauth.Client,
  redirectUri: string,
  scope: string | undefined,
): Promise<AuthorizationRequest> {
  const codeVerifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const url = new URL(discovery.authServer.authorization_endpoint as string);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('client_id', client.client_id);
  url.searchParams.set('redirect_uri', redirectUri);
  url.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(codeVerifier));
  url.searchParams.set('code_challenge_method', 'S256');
  url.searchParams.set('state', state);
  url.searchParams.set('resource', discovery.resource);
  if (scope) url.searchParams.set('scope', scope);
  return { url: url.href, state, codeVerifier };
}

/** Checks the callback (`state`, `iss`, error) and exchanges the code. */
export async function exchangeCode(options: {
  readonly authServer: oauth.AuthorizationServer;
  readonly client: ResolvedClient;
  readonly callback: URLSearchParams;
  readonly state: string;
  readonly redirectUri: string;
  readonly codeVerifier: string;
  readonly resource: string;
}): Promise<TokenSet> {
  const { authServer: as, client } = options;
  let params: URLSearchParams;
  try {
    params = oauth.validateAuthResponse(as, client.client, options.callback, options.state);
  } catch (error) {
    throw new BridgeError('OAUTH_CALLBACK_INVALID', callbackProblem(error, as.issuer), { cause: error });
  }
  const sentAt = Date.now();
  try {
    const response = await oauth.authorizationCodeGrantRequest(
      as,
      client.client,
      client.auth,
      params,
      options.redirectUri,
      options.codeVerifier,
      {
        additionalParameters: { resource: options.resource },
        ...requestOptions(as.token_endpoint as string),
      },
    );
    return toTokenSet(await oauth.processAuthorizationCodeResponse(as, client.client, response), sentAt);
  } catch (error) {
    throw new BridgeError(
      'OAUTH_TOKEN_FAILED',
      `the authorization server ${as.issuer} refused the authorization code: ${describeOAuthError(error)}`,
      { cause: error },
    );
  }
}

function callbackProblem(error: unknown, issuer: string): string {
  if (error instanceof oauth.AuthorizationResponseError) {
    return `the authorization server returned an error: ${error.error}${error.error_description ? ` (${error.error_description})` : ''}`;
  }
  const message = errorMessage(error);
  if (/"state"/.test(message)) {
    return 'the callback\'s "state" does not match the login in progress (a stale or forged callback); start the login again';
  }
  if (/"iss"/.test(message)) {
    return `the callback's "iss" does not name the authorization server ${issuer} (RFC 9207); refusing the response, which may come from a mix-up attack`;
  }
  return `invalid authorization response: ${message}`;
}

/** Spends a refresh token. Throws with `invalidGrant` set when the grant is gone (log in again). */
export async function refreshTokens(options: {
  readonly authServer: oauth.AuthorizationServer;
  readonly client: ResolvedClient;
  readonly refreshToken: string;
  readonly resource: string;
}): Promise<TokenSet> {
  const { authServer: as, client } = options;
  const sentAt = Date.now();
  try {
    const response = await oauth.refreshTokenGrantRequest(
      as,
      client.client,
      client.auth,
      options.refreshToken,
      {
        additionalParameters: { resource: options.resource },
        ...requestOptions(as.token_endpoint as string),
      },
    );
    return toTokenSet(await oauth.processRefreshTokenResponse(as, client.client, response), sentAt);
  } catch (error) {
    throw new RefreshError(error, as.issuer);
  }
}

/** Why a refresh failed: `permanent` means the grant or client is gone and a new login is needed. */
export class RefreshError extends Error {
  override readonly name = 'RefreshError';
  readonly permanent: boolean;

  constructor(cause: unknown, issuer: string) {
    // A 401 challenge from the token endpoint means the client itself was rejected (RFC 6749 §5.2).
    const permanent =
      cause instanceof oauth.WWWAuthenticateChallengeError ||
      (cause instanceof oauth.ResponseBodyError &&
        ['invalid_grant', 'invalid_client', 'unauthorized_client'].includes(cause.error));
    super(`refresh at ${issuer} failed: ${describeOAuthError(cause)}`, { cause });
    this.permanent = permanent;
  }
}

/**
 * `sentAt` is when the request left: the server counted `expires_in` from before the answer arrived,
 * and often from a whole second (JWT `exp`), so up to a second is taken off short lifetimes too.
 */
function toTokenSet(response: oauth.TokenEndpointResponse, sentAt: number): TokenSet {
  const lifetime = typeof response.expires_in === 'number' ? response.expires_in * 1000 : undefined;
  return {
    accessToken: response.access_token,
    tokenType: response.token_type,
    refreshToken: response.refresh_token,
    expiresAt: lifetime === undefined ? undefined : sentAt + Math.max(lifetime - 1000, lifetime / 2),
    scope: response.scope,
  };
}

/** oauth4webapi errors carry the OAuth `error` code and description; show them. */
export function describeOAuthError(error: unknown): string {
  if (error instanceof oauth.ResponseBodyError) {
    return `${error.error}${error.error_description ? ` (${error.error_description})` : ''} [HTTP ${error.status}]`;
  }
  if (error instanceof oauth.WWWAuthenticateChallengeError) {
    return `the authorization server rejected the client (HTTP ${error.status}); it may have been deleted`;
  }
  if (error instanceof Error && error.name === 'TimeoutError')
    return `no answer within ${HTTP_TIMEOUT_MS / 1000} s`;
  return errorMessage(error);
}
