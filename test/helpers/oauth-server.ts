/**
 * A real OAuth 2.1 authorization server (oidc-provider) on loopback, for tests of the bridge's OAuth client.
 *
 * Dynamic client registration is open; public clients (`token_endpoint_auth_method: 'none'`) with http
 * loopback redirect URIs are accepted; PKCE (S256) is required; `iss` is returned in the authorization
 * response (RFC 9207); refresh tokens are issued to every client allowed the `refresh_token` grant and
 * rotated on every use, and replaying a used one revokes the whole grant; resource indicators
 * (RFC 8707) bind each access token (opaque) to one resource. Login and consent are automatic: see
 * {@link completeConsent}.
 */
import { generateKeyPair, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface AuthServerOptions {
  /** Lifetime of newly issued access tokens; default 3600. See also {@link AuthServer.setAccessTokenTtl}. */
  accessTokenTtlSec?: number;
  /** Scopes the protected resource accepts; default ['mcp:read', 'mcp:write']. */
  scopes?: string[];
  /** Default true; false => the metadata omits `code_challenge_methods_supported` (PKCE is still enforced). */
  advertisePkce?: boolean;
  /** Rewrites the discovery JSON, or replaces it with a (non-JSON) string, on both well-known paths. */
  tamperMetadata?: (m: Record<string, unknown>) => Record<string, unknown> | string;
  /** Default true: serve /.well-known/oauth-authorization-server next to /.well-known/openid-configuration. */
  serveRfc8414?: boolean;
}

export interface AuthServerCounts {
  /** Successful dynamic client registrations. */
  registrations: number;
  /** Token requests with grant_type=authorization_code (successful or not). */
  authorizationCode: number;
  /** Token requests with grant_type=refresh_token (successful or not). */
  refreshToken: number;
  /** Token endpoint responses with an error status. */
  tokenErrors: number;
  /** Token endpoint responses with error=invalid_grant. */
  invalidGrant: number;
  /** Token requests that were held back by {@link AuthServer.setTokenDelay}. */
  delayedTokenRequests: number;
  /** Held-back token requests whose client went away during the delay (never processed). */
  droppedTokenRequests: number;
}

/** The parts of an oidc-provider access token the resource server fixture reads. */
export interface OidcAccessToken {
  readonly clientId: string;
  readonly accountId?: string;
  readonly grantId?: string;
  readonly scope?: string;
  readonly aud?: string | string[];
  readonly exp: number;
  readonly isExpired: boolean;
}

interface OidcGrant {
  addOIDCScope(scope: string): void;
  addResourceScope(resource: string, scope: string): void;
  save(): Promise<string>;
}

interface OidcInteraction {
  readonly uid: string;
  readonly prompt: { name: string; reasons: string[]; details: Record<string, unknown> };
  readonly params: Record<string, unknown>;
  readonly session?: { accountId: string };
  readonly grantId?: string;
}

interface KoaContext {
  readonly path: string;
  readonly method: string;
  status: number;
  body: unknown;
  type: string;
  readonly oidc?: { params?: Record<string, unknown> };
}

/** A typed view of the parts of oidc-provider's `Provider` the fixtures use (the package ships no types). */
export interface OidcProvider {
  readonly issuer: string;
  callback(): (req: IncomingMessage, res: ServerResponse) => Promise<void>;
  use(middleware: (ctx: KoaContext, next: () => Promise<void>) => Promise<void>): unknown;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<OidcInteraction>;
  interactionFinished(
    req: IncomingMessage,
    res: ServerResponse,
    result: Record<string, unknown>,
    options?: { mergeWithLastSubmission?: boolean },
  ): Promise<void>;
  readonly AccessToken: {
    find(value: string, options?: { ignoreExpiration?: boolean }): Promise<OidcAccessToken | undefined>;
  };
  readonly Grant: {
    new (init: { accountId: string; clientId: string }): OidcGrant;
    find(id: string): Promise<OidcGrant | undefined>;
  };
}

type ProviderConstructor = new (issuer: string, configuration: Record<string, unknown>) => OidcProvider;

export interface AuthServer {
  /** e.g. http://127.0.0.1:PORT (no trailing slash). */
  readonly issuer: string;
  readonly provider: OidcProvider;
  /** The scopes the protected resource accepts (as configured). */
  readonly scopes: readonly string[];
  readonly counts: AuthServerCounts;
  setAccessTokenTtl(sec: number): void;
  /**
   * Holds every token-endpoint request for `ms` before the provider sees it; a request whose client
   * disconnects meanwhile is dropped unprocessed (so a killed client never consumes a refresh token).
   */
  setTokenDelay(ms: number): void;
  /** Revokes every grant with all its tokens: afterwards every refresh gets invalid_grant. */
  revokeAllGrants(): Promise<void>;
  close(): Promise<void>;
}

/** The account every authorization logs in as. */
export const TEST_ACCOUNT_ID = 'test-user';

const OIDC_SCOPES = new Set(['openid', 'offline_access']);
const DAY = 24 * 60 * 60;

// The package has no type declarations: load it through a non-literal specifier and type the result above.
const OIDC_PROVIDER_MODULE: string = 'oidc-provider';
let providerClass: Promise<ProviderConstructor> | undefined;
let signingKey: Promise<Record<string, unknown>> | undefined;

/** Runs `fn` with oidc-provider's development notices (console.warn/info) filtered out. */
async function withoutOidcNotices<T>(fn: () => T | Promise<T>): Promise<T> {
  const { warn, info } = console;
  const filter =
    (original: (...args: unknown[]) => void) =>
    (...args: unknown[]) => {
      if (typeof args[0] === 'string' && args[0].startsWith('oidc-provider ')) return;
      original.apply(console, args);
    };
  console.warn = filter(warn);
  console.info = filter(info);
  try {
    return await fn();
  } finally {
    console.warn = warn;
    console.info = info;
  }
}

function loadProvider(): Promise<ProviderConstructor> {
  providerClass ??= withoutOidcNotices(async () => {
    const module = (await import(OIDC_PROVIDER_MODULE)) as { default: ProviderConstructor };
    return module.default;
  });
  return providerClass;
}

/** One RSA signing key per test process (oidc-provider's own dev keys would print a warning). */
function loadSigningKey(): Promise<Record<string, unknown>> {
  signingKey ??= new Promise((resolve, reject) => {
    generateKeyPair('rsa', { modulusLength: 2048 }, (error, _publicKey, privateKey) => {
      if (error) reject(error);
      else resolve({ ...privateKey.export({ format: 'jwk' }), use: 'sig', alg: 'RS256', kid: 'test-key' });
    });
  });
  return signingKey;
}

interface StoredEntry {
  payload: Record<string, unknown>;
  expiresAt: number;
}

/**
 * A per-server in-memory adapter (the bundled one prints a warning and cannot be enumerated, which
 * {@link AuthServer.revokeAllGrants} needs). Entries outlive their expiry by a minute so that an
 * expired token is still recognised as "expired" rather than "unknown".
 */
function createAdapterClass(store: Map<string, StoredEntry>) {
  const live = (key: string): StoredEntry | undefined => {
    const entry = store.get(key);
    if (entry && entry.expiresAt <= Date.now()) {
      store.delete(key);
      return undefined;
    }
    return entry;
  };
  return class MemoryAdapter {
    constructor(private readonly model: string) {}

    private key(id: string) {
      return `${this.model}:${id}`;
    }

    async upsert(id: string, payload: Record<string, unknown>, expiresIn?: number) {
      const expiresAt = typeof expiresIn === 'number' ? Date.now() + (expiresIn + 60) * 1000 : Infinity;
      store.set(this.key(id), { payload, expiresAt });
    }

    async find(id: string) {
      return live(this.key(id))?.payload;
    }

    async findByUid(uid: string) {
      for (const [key, entry] of store) {
        if (key.startsWith(`${this.model}:`) && entry.payload.uid === uid) return live(key)?.payload;
      }
      return undefined;
    }

    async findByUserCode(userCode: string) {
      for (const [key, entry] of store) {
        if (key.startsWith(`${this.model}:`) && entry.payload.userCode === userCode)
          return live(key)?.payload;
      }
      return undefined;
    }

    async consume(id: string) {
      const entry = live(this.key(id));
      if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
    }

    async destroy(id: string) {
      store.delete(this.key(id));
    }

    async revokeByGrantId(grantId: string) {
      for (const [key, entry] of store) {
        if (key.startsWith(`${this.model}:`) && entry.payload.grantId === grantId) store.delete(key);
      }
    }
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function listParam(value: unknown): string[] {
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string');
  return typeof value === 'string' ? [value] : [];
}

export async function startAuthServer(options: AuthServerOptions = {}): Promise<AuthServer> {
  const scopes = [...(options.scopes ?? ['mcp:read', 'mcp:write'])];
  const advertisePkce = options.advertisePkce ?? true;
  const serveRfc8414 = options.serveRfc8414 ?? true;
  let accessTokenTtl = options.accessTokenTtlSec ?? 3600;
  let tokenDelayMs = 0;
  const counts: AuthServerCounts = {
    registrations: 0,
    authorizationCode: 0,
    refreshToken: 0,
    tokenErrors: 0,
    invalidGrant: 0,
    delayedTokenRequests: 0,
    droppedTokenRequests: 0,
  };
  const store = new Map<string, StoredEntry>();
  const held = new Set<() => void>();

  const [Provider, jwk] = await Promise.all([loadProvider(), loadSigningKey()]);

  let provider: OidcProvider | undefined;
  let handle: ((req: IncomingMessage, res: ServerResponse) => Promise<void>) | undefined;

  const server = createServer((req, res) => {
    route(req, res).catch((error: unknown) => {
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(error instanceof Error ? (error.stack ?? error.message) : String(error));
      } else {
        res.destroy();
      }
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const issuer = `http://127.0.0.1:${port}`;

  /** Resolves true after `ms`, or false as soon as the client disconnects. */
  function hold(res: ServerResponse, ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const finish = (ok: boolean) => {
        clearTimeout(timer);
        res.off('close', onClose);
        held.delete(onClose);
        resolve(ok);
      };
      const onClose = () => finish(false);
      const timer = setTimeout(() => finish(!res.destroyed), ms);
      res.once('close', onClose);
      held.add(onClose);
    });
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!provider || !handle) throw new Error('authorization server is not ready');
    const url = new URL(req.url ?? '/', issuer);
    if (req.method === 'GET' && url.pathname.startsWith('/interaction/')) {
      await interact(provider, req, res);
      return;
    }
    if (url.pathname === '/.well-known/oauth-authorization-server') {
      if (!serveRfc8414) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'not_found' }));
        return;
      }
      req.url = `/.well-known/openid-configuration${url.search}`;
    }
    if (req.method === 'POST' && url.pathname === '/token' && tokenDelayMs > 0) {
      counts.delayedTokenRequests++;
      if (!(await hold(res, tokenDelayMs))) {
        counts.droppedTokenRequests++;
        return;
      }
    }
    await handle(req, res);
  }

  /** Logs in {@link TEST_ACCOUNT_ID} and grants exactly the requested scopes for the requested resources. */
  async function interact(p: OidcProvider, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const details = await p.interactionDetails(req, res);
    const { params } = details;
    const clientId = String(params.client_id);
    const accountId = details.session?.accountId ?? TEST_ACCOUNT_ID;
    const requested = typeof params.scope === 'string' ? params.scope.split(' ').filter(Boolean) : [];
    const existing = details.grantId ? await p.Grant.find(details.grantId) : undefined;
    const grant = existing ?? new p.Grant({ accountId, clientId });
    const oidcScopes = requested.filter((s) => OIDC_SCOPES.has(s));
    const resourceScopes = requested.filter((s) => !OIDC_SCOPES.has(s));
    if (oidcScopes.length > 0) grant.addOIDCScope(oidcScopes.join(' '));
    if (resourceScopes.length > 0) {
      for (const resource of listParam(params.resource))
        grant.addResourceScope(resource, resourceScopes.join(' '));
    }
    const grantId = await grant.save();
    const result: Record<string, unknown> = { consent: { grantId } };
    if (details.prompt.name === 'login' || !details.session) result.login = { accountId };
    await p.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
  }

  const configuration: Record<string, unknown> = {
    adapter: createAdapterClass(store),
    jwks: { keys: [jwk] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    clientDefaults: {
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
    },
    responseTypes: ['code'],
    scopes: [...OIDC_SCOPES],
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: false },
      // Bearer tokens only: the resource server fixture does not verify DPoP proofs.
      dPoP: { enabled: false },
      registration: { enabled: true, initialAccessToken: false },
      revocation: {
        enabled: true,
        allowedPolicy: async (_ctx: unknown, client: { clientId: string }, token: { clientId: string }) =>
          token.clientId === client.clientId,
      },
      rpInitiatedLogout: { enabled: false },
      userinfo: { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: async (_ctx: unknown, _client: unknown, oneOf?: string[]) => oneOf,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx: unknown, resource: string) => {
          const url = URL.parse(resource);
          if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
            throw new Error(`unsupported resource indicator ${resource}`);
          }
          return { scope: scopes.join(' '), accessTokenFormat: 'opaque' };
        },
      },
    },
    interactions: {
      url: async (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}`,
    },
    findAccount: async (_ctx: unknown, sub: string) => ({ accountId: sub, claims: async () => ({ sub }) }),
    issueRefreshToken: async (_ctx: unknown, client: { grantTypeAllowed(type: string): boolean }) =>
      client.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: true,
    expiresWithSession: async () => false,
    clientBasedCORS: () => true,
    renderError: async (ctx: KoaContext, out: Record<string, unknown>) => {
      ctx.type = 'json';
      ctx.body = out;
    },
    ttl: {
      AccessToken: () => accessTokenTtl,
      AuthorizationCode: 60,
      ClientCredentials: 600,
      DeviceCode: 600,
      Grant: 14 * DAY,
      IdToken: 3600,
      Interaction: 600,
      RefreshToken: 14 * DAY,
      Session: 14 * DAY,
    },
  };

  const instance = await withoutOidcNotices(() => new Provider(issuer, configuration));

  instance.use(async (ctx, next) => {
    await next();
    if (ctx.path === '/.well-known/openid-configuration' && ctx.status === 200 && isRecord(ctx.body)) {
      const metadata: Record<string, unknown> = {
        ...ctx.body,
        scopes_supported: [...new Set([...listParam(ctx.body.scopes_supported), ...scopes])],
      };
      if (!advertisePkce) delete metadata.code_challenge_methods_supported;
      const out = options.tamperMetadata ? options.tamperMetadata(metadata) : metadata;
      ctx.body = out;
      if (typeof out === 'string') ctx.type = 'application/json';
    } else if (ctx.path === '/token' && ctx.method === 'POST') {
      const grantType = ctx.oidc?.params?.grant_type;
      if (grantType === 'authorization_code') counts.authorizationCode++;
      else if (grantType === 'refresh_token') counts.refreshToken++;
      if (ctx.status >= 400) {
        counts.tokenErrors++;
        if (isRecord(ctx.body) && ctx.body.error === 'invalid_grant') counts.invalidGrant++;
      }
    }
  });
  instance.on('registration_create.success', () => {
    counts.registrations++;
  });
  instance.on('server_error', (_ctx, error) => {
    console.error('oauth-server fixture: server_error', error);
  });

  provider = instance;
  handle = instance.callback();

  return {
    issuer,
    provider: instance,
    scopes,
    counts,
    setAccessTokenTtl(sec) {
      accessTokenTtl = sec;
    },
    setTokenDelay(ms) {
      tokenDelayMs = ms;
    },
    async revokeAllGrants() {
      const grantIds = new Set<string>();
      for (const [key, entry] of store) {
        if (key.startsWith('Grant:')) grantIds.add(key.slice('Grant:'.length));
        if (typeof entry.payload.grantId === 'string') grantIds.add(entry.payload.grantId);
      }
      for (const [key, entry] of store) {
        if (key.startsWith('Grant:') || grantIds.has(entry.payload.grantId as string)) store.delete(key);
      }
    },
    async close() {
      for (const release of [...held]) release();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Follows `authorizationUrl` like a browser that is already signed in and always consents: its own
 * cookie jar, manual redirects, automatic login of {@link TEST_ACCOUNT_ID} and consent to exactly the
 * requested scopes and resources. Returns the first redirect whose origin is not the authorization
 * server's — the client's redirect_uri with `code`, `state` and `iss` (or an error) — without fetching it.
 */
export async function completeConsent(authorizationUrl: string): Promise<string> {
  const origin = new URL(authorizationUrl).origin;
  const jar = new Map<string, string>();
  let url = authorizationUrl;
  for (let hop = 0; hop < 20; hop++) {
    const cookie = [...jar].map(([name, value]) => `${name}=${value}`).join('; ');
    const response = await fetch(url, { redirect: 'manual', headers: cookie ? { cookie } : {} });
    for (const header of response.headers.getSetCookie()) {
      const [pair = '', ...attributes] = header.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attributes.some((a) => {
        const [key = '', val = ''] = a.split('=').map((s) => s.trim());
        if (key.toLowerCase() === 'max-age') return Number(val) <= 0;
        if (key.toLowerCase() === 'expires') return Date.parse(val) <= Date.now();
        return false;
      });
      if (expired || value === '') jar.delete(name);
      else jar.set(name, value);
    }
    const location = response.headers.get('location');
    if (response.status < 300 || response.status >= 400 || !location) {
      const body = await response.text();
      throw new Error(
        `authorization did not redirect (HTTP ${response.status} at ${url}): ${body.slice(0, 500)}`,
      );
    }
    await response.body?.cancel();
    const next = new URL(location, url);
    if (next.origin !== origin) return next.href;
    url = next.href;
  }
  throw new Error('too many redirects while completing consent');
}
