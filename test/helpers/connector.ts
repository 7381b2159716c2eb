/**
 * The public listener from a hosted connector's side: a daemon with `public.url` on loopback, and a
 * ChatGPT-like OAuth client written with oauth4webapi (discovery from the 401, RFC 9728, RFC 8414,
 * dynamic registration, PKCE + resource, the consent form with the password, the code exchange).
 */
import * as oauth from 'oauth4webapi';
import type { PublicConfig, UpstreamConfig } from '../../src/config/schema.js';
import type { Daemon, DaemonOptions } from '../../src/daemon.js';
import { startTestDaemon } from './bridge.js';
import { freePort } from './cli.js';

export const OWNER_PASSWORD = 'correct horse battery staple';
export const CHATGPT_REDIRECT = 'https://chatgpt.com/connector_platform_oauth_redirect';
const insecure = { [oauth.allowInsecureRequests]: true } as const;

export interface PublicDaemon {
  readonly daemon: Daemon;
  readonly issuer: string;
  /** public.url + /mcp */
  readonly resource: string;
}

export async function startPublicDaemon(
  dir: string,
  upstreams: UpstreamConfig[],
  options: { public?: Partial<PublicConfig>; port?: number } & Partial<Omit<DaemonOptions, 'config'>> = {},
): Promise<PublicDaemon> {
  const port = options.port ?? (await freePort());
  const issuer = `http://127.0.0.1:${port}`;
  const daemon = await startTestDaemon(dir, upstreams, {
    ...options,
    env: options.env ?? { MCP_BRIDGE_OWNER_PASSWORD: OWNER_PASSWORD },
    overrides: {
      public: {
        url: issuer,
        port,
        ownerPassword: undefined,
        upstreams: undefined,
        redirectUris: [],
        accessTokenTtlSeconds: 3600,
        refreshTokenTtlSeconds: 30 * 86_400,
        ...options.public,
      },
    },
  });
  return { daemon, issuer, resource: `${issuer}/mcp` };
}

/** An MCP initialize on the public /mcp, with a bearer token if given: 200, or 401 without a valid one. */
export function initializeWith(resource: string, token?: string): Promise<Response> {
  return fetch(resource, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: {
        protocolVersion: '2025-06-18',
        capabilities: {},
        clientInfo: { name: 'probe', version: '1' },
      },
    }),
  });
}

/** fetch with a cookie jar and no automatic redirects, like a browser that we drive by hand. */
export class BrowserLike {
  private readonly cookies = new Map<string, string>();

  async fetch(url: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.cookies.size > 0)
      headers.set('cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    const response = await fetch(url, { ...init, headers, redirect: 'manual' });
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair!.indexOf('=');
      this.cookies.set(pair!.slice(0, eq), pair!.slice(eq + 1));
    }
    return response;
  }
}

export interface ConsentAnswer {
  /** Final status of the consent POST (303 on success, 401 wrong password, 429 locked …). */
  readonly status: number;
  readonly html: string;
  readonly retryAfter: string | null;
}

export interface Connection {
  readonly as: oauth.AuthorizationServer;
  readonly client: oauth.Client;
  readonly clientAuth: oauth.ClientAuth;
  readonly redirectUri: string;
  readonly resource: string;
}

/** Discovery the way ChatGPT does it: the 401's resource_metadata, then the AS metadata. */
export async function discover(
  resource: string,
): Promise<{ as: oauth.AuthorizationServer; prm: oauth.ResourceServer }> {
  const challenge = await fetch(resource, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
  });
  if (challenge.status !== 401) throw new Error(`expected 401, got ${challenge.status}`);
  const www = challenge.headers.get('www-authenticate') ?? '';
  const metadataUrl = /resource_metadata="([^"]+)"/.exec(www)?.[1];
  if (!metadataUrl) throw new Error(`no resource_metadata in ${www}`);
  const prmResponse = await fetch(metadataUrl);
  const prm = await oauth.processResourceDiscoveryResponse(new URL(resource), prmResponse);
  const issuer = new URL(prm.authorization_servers![0]!);
  const as = await oauth.processDiscoveryResponse(
    issuer,
    await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }),
  );
  return { as, prm };
}

export async function register(
  as: oauth.AuthorizationServer,
  metadata: Partial<oauth.Client> & { redirect_uris: string[] },
): Promise<Response> {
  return oauth.dynamicClientRegistrationRequest(as, { client_name: 'ChatGPT', ...metadata }, insecure);
}

/** Registers like ChatGPT (client_secret_post) or a public client (`none`). */
export async function registerClient(
  resource: string,
  options: { redirectUri?: string; auth?: 'none' | 'client_secret_post'; name?: string } = {},
): Promise<Connection> {
  const { as } = await discover(resource);
  const redirectUri = options.redirectUri ?? CHATGPT_REDIRECT;
  const auth = options.auth ?? 'client_secret_post';
  const client = await oauth.processDynamicClientRegistrationResponse(
    await register(as, {
      redirect_uris: [redirectUri],
      token_endpoint_auth_method: auth,
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      client_name: options.name ?? 'ChatGPT',
    }),
  );
  const clientAuth = auth === 'none' ? oauth.None() : oauth.ClientSecretPost(String(client.client_secret));
  return { as, client: client as oauth.Client, clientAuth, redirectUri, resource };
}

export interface AuthorizeOptions {
  readonly password?: string;
  readonly decision?: 'allow' | 'deny';
  readonly state?: string;
  /** Replaces or removes (undefined value) authorization request parameters. */
  readonly params?: Record<string, string | undefined>;
  readonly browser?: BrowserLike;
}

export interface AuthorizeResult {
  /** The Location that leaves the bridge for the client's redirect URI, if it got that far. */
  readonly location: URL | undefined;
  readonly consent: ConsentAnswer | undefined;
  /** The first answer that was neither a same-origin redirect nor the consent page. */
  readonly stoppedAt: Response | undefined;
  readonly codeVerifier: string;
  readonly state: string;
}

/** The browser part: authorize → consent page → password → redirects → the client's redirect URI. */
export async function authorize(conn: Connection, options: AuthorizeOptions = {}): Promise<AuthorizeResult> {
  const browser = options.browser ?? new BrowserLike();
  const codeVerifier = oauth.generateRandomCodeVerifier();
  const state = options.state ?? oauth.generateRandomState();
  const url = new URL(conn.as.authorization_endpoint!);
  const params: Record<string, string | undefined> = {
    client_id: conn.client.client_id,
    redirect_uri: conn.redirectUri,
    response_type: 'code',
    code_challenge: await oauth.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    resource: conn.resource,
    scope: 'mcp',
    ...options.params,
  };
  for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, v);
  let next = url.href;
  let consent: ConsentAnswer | undefined;
  for (let hop = 0; hop < 10; hop++) {
    const response = await browser.fetch(next);
    const location = response.headers.get('location');
    if (location) {
      const target = new URL(location, next);
      if (target.origin !== url.origin)
        return { location: target, consent, stoppedAt: undefined, codeVerifier, state };
      next = target.href;
      continue;
    }
    const html = await response.text();
    const csrf = /name="csrf" value="([^"]+)"/.exec(html)?.[1];
    if (response.status !== 200 || !csrf)
      return { location: undefined, consent, stoppedAt: response, codeVerifier, state };
    const posted = await browser.fetch(next, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: url.origin },
      body: new URLSearchParams({
        csrf,
        username: 'owner',
        password: options.password ?? OWNER_PASSWORD,
        decision: options.decision ?? 'allow',
      }),
    });
    const after = posted.headers.get('location');
    consent = {
      status: posted.status,
      html: after ? '' : await posted.text(),
      retryAfter: posted.headers.get('retry-after'),
    };
    if (!after) return { location: undefined, consent, stoppedAt: undefined, codeVerifier, state };
    next = new URL(after, next).href;
  }
  throw new Error('too many redirects');
}

/** The code from the redirect, exchanged with PKCE and `resource`. */
export async function exchange(
  conn: Connection,
  result: AuthorizeResult,
): Promise<oauth.TokenEndpointResponse> {
  if (!result.location) throw new Error('no redirect to the client');
  const params = oauth.validateAuthResponse(conn.as, conn.client, result.location, result.state);
  const response = await oauth.authorizationCodeGrantRequest(
    conn.as,
    conn.client,
    conn.clientAuth,
    params,
    conn.redirectUri,
    result.codeVerifier,
    { additionalParameters: { resource: conn.resource }, ...insecure },
  );
  return oauth.processAuthorizationCodeResponse(conn.as, conn.client, response);
}

export async function refresh(conn: Connection, refreshToken: string): Promise<Response> {
  return oauth.refreshTokenGrantRequest(conn.as, conn.client, conn.clientAuth, refreshToken, {
    additionalParameters: { resource: conn.resource },
    ...insecure,
  });
}

/** Registration, consent and code exchange in one: what "Connect" in ChatGPT amounts to. */
export async function connectLikeChatGPT(
  resource: string,
): Promise<{ conn: Connection; tokens: oauth.TokenEndpointResponse }> {
  const conn = await registerClient(resource);
  const tokens = await exchange(conn, await authorize(conn));
  return { conn, tokens };
}
