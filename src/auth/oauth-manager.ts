import type { AuthorizationServer } from 'oauth4webapi';
import type { HttpUpstreamConfig } from '../config/schema.js';
import { BridgeError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { type Discovery, parseChallenge } from './discovery.js';
import type { TokenSet } from './grants.js';
import { needsAuthError } from './needs-auth.js';
import type { OAuthFetch } from './oauth-http.js';
import {
  type OAuthDeps,
  type OAuthManagerEvents,
  OAuthUpstreamState,
  type RefreshResult,
} from './oauth-upstream-state.js';
import type { Registration, ResolvedClient } from './registration.js';
import { usable } from './token-refresh.js';
import { clientKey, type OAuthState, type StoredTokens, type TokenFile } from './token-store.js';

export type { OAuthManagerEvents, RefreshResult } from './oauth-upstream-state.js';

/** What may be shown of an upstream's OAuth tokens (the status page, /metrics): times, never a token. */
export interface TokenInfo {
  readonly upstream: string;
  /** A login is stored. */
  readonly loggedIn: boolean;
  /** Epoch ms the access token expires; undefined when the server gave no expiry (or no login). */
  readonly expiresAt: number | undefined;
  /** Epoch ms the current tokens were obtained (by a login or a refresh, maybe by another process). */
  readonly obtainedAt: number | undefined;
  readonly refreshable: boolean;
  /** The last refresh this process made. */
  readonly lastRefresh: { readonly at: number; readonly outcome: RefreshResult } | undefined;
}

/** What the SDK's HTTP transports call before each request and on a 401 (their `AuthProvider`). */
export interface BearerProvider {
  token(): Promise<string | undefined>;
  onUnauthorized(ctx: { response: Response }): Promise<void>;
  /** The fetch the transport must use, so that a 401 can be matched to the token it was sent with. */
  fetch(url: string | URL, init?: RequestInit): Promise<Response>;
}

export interface OAuthManagerOptions {
  /** Omitted by `mcp-bridge auth`, which has no upstreams to tell. */
  readonly events?: OAuthManagerEvents | undefined;
  /** For requests to the token endpoint; tests inject one. */
  readonly fetch?: OAuthFetch | undefined;
}

/**
 * Holds the tokens of every OAuth upstream of this process (one `OAuthUpstreamState` each): hands
 * out access tokens, refreshes them ahead of expiry and on a 401, one refresh at a time per upstream
 * (and, through the token file lock, per machine), and stores the rotated refresh token before the
 * new access token is used.
 */
export class OAuthManager {
  private readonly upstreams = new Map<string, OAuthUpstreamState>();
  private readonly deps: OAuthDeps;
  private closed = false;

  constructor(
    readonly store: TokenFile,
    private readonly log: Logger,
    options: OAuthManagerOptions = {},
  ) {
    this.deps = {
      store,
      log,
      events: options.events ?? { onNeedsAuth: () => {}, onAuthorized: () => {} },
      fetch: options.fetch,
    };
  }

  /** Registers the OAuth-capable upstreams and schedules refreshes for the tokens on disk. */
  async load(configs: readonly HttpUpstreamConfig[]): Promise<void> {
    for (const config of configs) this.upstream(config);
    let state: OAuthState;
    try {
      state = await this.store.read();
    } catch (error) {
      this.log.error(
        { err: errorMessage(error) },
        'cannot read the token file; OAuth upstreams will need a login',
      );
      return;
    }
    for (const config of configs) {
      const stored = usable(state.tokens[config.name], config);
      if (stored) this.upstream(config).use(stored);
    }
  }

  /** The scope the last 401 challenge named, if any. */
  challengeScope(upstream: string): string | undefined {
    return this.upstreams.get(upstream)?.challenge?.scope;
  }

  /** Scopes a 403 `insufficient_scope` asked for, plus those granted: added to the next login. */
  stepUpScope(upstream: string): string | undefined {
    return this.upstreams.get(upstream)?.stepUp;
  }

  /** Records the challenge of a 401. */
  noteChallenge(upstream: string, header: string | null): void {
    const challenge = parseChallenge(header);
    const state = this.upstreams.get(upstream);
    if (challenge && state) state.challenge = challenge;
  }

  /** Records a scope a 403 `insufficient_scope` asked for (step-up happens at the next login). */
  noteScope(upstream: string, scope: string | undefined): void {
    const state = this.upstreams.get(upstream);
    if (state) state.stepUp = unionScopes(state.tokens?.scope, state.stepUp, scope) ?? '';
  }

  /** The bearer provider the upstream's HTTP transport uses. */
  provider(config: HttpUpstreamConfig): BearerProvider {
    const upstream = this.upstream(config);
    // Which access token each response answered, so a 401 refreshes only if that token is still current.
    const sentWith = new WeakMap<Response, string | undefined>();
    return {
      token: async () => (await upstream.validToken())?.accessToken,
      fetch: async (url, init) => {
        const response = await fetch(url, init);
        if (response.status === 401) sentWith.set(response, bearerOf(init?.headers));
        return response;
      },
      onUnauthorized: async ({ response }) => {
        this.noteChallenge(config.name, response.headers.get('www-authenticate'));
        const current = upstream.tokens;
        if (!current) {
          const why = this.store.problem ? ` (${this.store.problem})` : '';
          throw needsAuthError(config.name, `the server requires authorization and no login is stored${why}`);
        }
        const used = sentWith.has(response) ? sentWith.get(response) : current.accessToken;
        // Sent with an older token (or none) while a newer one exists: the transport's retry uses it.
        if (used !== current.accessToken) return;
        if (!current.refreshToken) {
          throw needsAuthError(
            config.name,
            'the server rejected the access token and there is no refresh token',
          );
        }
        await upstream.refresh(current.accessToken);
      },
    };
  }

  /** Stores the tokens of a finished login, and the client and server metadata they belong to. */
  async saveLogin(
    config: HttpUpstreamConfig,
    discovery: Discovery,
    client: ResolvedClient & { registration?: Registration },
    tokens: TokenSet,
    redirectUri: string,
  ): Promise<void> {
    const stored: StoredTokens = {
      serverUrl: config.url,
      resource: discovery.resource,
      issuer: discovery.issuer,
      clientId: client.client.client_id,
      accessToken: tokens.accessToken,
      tokenType: tokens.tokenType,
      refreshToken: tokens.refreshToken,
      expiresAt: tokens.expiresAt,
      scope: tokens.scope,
      obtainedAt: Date.now(),
    };
    await this.store.update(async (state) => {
      state.authServers[discovery.issuer] = plainMetadata(discovery.authServer);
      if (client.registration) {
        state.clients[clientKey(discovery.issuer, client.client.client_id)] = {
          issuer: discovery.issuer,
          clientId: client.client.client_id,
          ...(client.registration.clientSecret ? { clientSecret: client.registration.clientSecret } : {}),
          redirectUris: [redirectUri],
          tokenEndpointAuthMethod: client.registration.tokenEndpointAuthMethod,
          registeredAt: Date.now(),
        };
      }
      state.tokens[config.name] = stored;
      return { write: true, value: undefined };
    });
    this.upstream(config).use(stored, true);
    this.log.info({ upstream: config.name, issuer: discovery.issuer, scope: tokens.scope }, 'login stored');
    this.deps.events.onAuthorized(config.name);
  }

  /** A dynamically registered client for the issuer that allows this redirect URI, if one is stored. */
  async registeredClient(issuer: string, redirectUri: string) {
    const clients = Object.values((await this.store.read()).clients);
    return clients.find((c) => c.issuer === issuer && c.redirectUris.includes(redirectUri));
  }

  /**
   * Picks up a login stored by another process (e.g. `mcp-bridge auth` run while this daemon was
   * not reachable). Resolves true when new tokens were found.
   */
  async reload(upstream: string): Promise<boolean> {
    const state = this.upstreams.get(upstream);
    if (!state) return false;
    const stored = usable((await this.store.read()).tokens[upstream], state.config);
    if (!stored || stored.accessToken === state.tokens?.accessToken) return false;
    state.use(stored);
    this.log.info({ upstream }, 'picked up a login stored by another process');
    return true;
  }

  /** Refreshes now unless someone already did since `seenAccessToken` (see `OAuthUpstreamState`). */
  refresh(upstream: string, seenAccessToken: string | undefined): Promise<StoredTokens> {
    const state = this.upstreams.get(upstream);
    if (!state) {
      return Promise.reject(new BridgeError('INTERNAL', `no OAuth config for upstream "${upstream}"`));
    }
    return state.refresh(seenAccessToken);
  }

  /** Every OAuth upstream this process knows (a reload may have removed some from the config). */
  tokenInfo(): TokenInfo[] {
    return [...this.upstreams.values()].map((state) => ({
      upstream: state.name,
      loggedIn: state.tokens !== undefined,
      expiresAt: state.tokens?.expiresAt,
      obtainedAt: state.tokens?.obtainedAt,
      refreshable: state.tokens?.refreshToken !== undefined,
      lastRefresh: state.lastRefresh,
    }));
  }

  close(): void {
    this.closed = true;
    for (const state of this.upstreams.values()) state.close();
  }

  /** The upstream's state, created on first use; a reloaded config replaces the one it had. */
  private upstream(config: HttpUpstreamConfig): OAuthUpstreamState {
    let state = this.upstreams.get(config.name);
    if (state) {
      state.config = config;
      return state;
    }
    state = new OAuthUpstreamState(config, this.deps);
    if (this.closed) state.close();
    this.upstreams.set(config.name, state);
    return state;
  }
}

function bearerOf(headers: RequestInit['headers']): string | undefined {
  const value = new Headers(headers).get('authorization');
  return value?.replace(/^bearer\s+/i, '') ?? undefined;
}

export function unionScopes(...scopes: (string | undefined)[]): string | undefined {
  const all = new Set(scopes.flatMap((s) => (s ? s.split(/\s+/).filter(Boolean) : [])));
  return all.size === 0 ? undefined : [...all].join(' ');
}

/** The metadata as plain JSON (oauth4webapi objects may carry symbol keys). */
function plainMetadata(as: AuthorizationServer): OAuthState['authServers'][string] {
  return JSON.parse(JSON.stringify(as));
}
