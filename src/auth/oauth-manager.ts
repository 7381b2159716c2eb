import type { AuthorizationServer } from 'oauth4webapi';
import { resolveOpRefs } from '../config/op-refs.js';
import type { HttpUpstreamConfig } from '../config/schema.js';
import { BridgeError, errorMessage, isBridgeError } from '../errors.js';
import type { Logger } from '../log.js';
import {
  type Challenge,
  type Discovery,
  parseChallenge,
  RefreshError,
  type ResolvedClient,
  refreshTokens,
  resolveClient,
  type TokenSet,
} from './oauth-client.js';
import type { OAuthState, StoredTokens, TokenStore } from './token-store.js';

/** What the SDK's HTTP transports call before each request and on a 401 (their `AuthProvider`). */
export interface BearerProvider {
  token(): Promise<string | undefined>;
  onUnauthorized(ctx: { response: Response }): Promise<void>;
  /** The fetch the transport must use, so that a 401 can be matched to the token it was sent with. */
  fetch(url: string | URL, init?: RequestInit): Promise<Response>;
}

export interface OAuthManagerEvents {
  /** The upstream's grant is gone (or it never had one): it needs `npm run auth`. */
  readonly onNeedsAuth: (upstream: string, error: BridgeError) => void;
  /** New tokens were stored after a login. */
  readonly onAuthorized: (upstream: string) => void;
}

const MAX_LEAD_MS = 60_000;
const MIN_LEAD_MS = 500;
const RETRY_MIN_MS = 1_000;
const RETRY_MAX_MS = 60_000;
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The command that fixes a missing or dead grant, for every error and for /status. */
export function loginCommand(upstream: string): string {
  return `npm run auth -- ${upstream}`;
}

export function needsAuthError(upstream: string, why: string, cause?: unknown): BridgeError {
  return new BridgeError(
    'NEEDS_AUTH',
    `upstream "${upstream}" needs a login: ${why}; run \`${loginCommand(upstream)}\``,
    {
      cause,
      details: { upstream, command: loginCommand(upstream) },
    },
  );
}

/**
 * Holds the tokens of every OAuth upstream of this process: hands out access tokens, refreshes them
 * ahead of expiry and on a 401, one refresh at a time per upstream (and, through the token file lock,
 * per machine), and stores the rotated refresh token before the new access token is used.
 */
export class OAuthManager {
  private readonly configs = new Map<string, HttpUpstreamConfig>();
  private readonly tokens = new Map<string, StoredTokens>();
  private readonly refreshing = new Map<string, Promise<StoredTokens>>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly retryDelays = new Map<string, number>();
  /** Tokens a refresh obtained but could not write yet, with the refresh token they replace. */
  private readonly unwritten = new Map<string, { replaces: string; tokens: StoredTokens }>();
  /** The last 401 challenge of each upstream (its scope is requested at the next login). */
  private readonly challenges = new Map<string, Challenge>();
  /** Scopes to add at the next login (step-up after a 403 `insufficient_scope`). */
  private readonly stepUps = new Map<string, string>();
  private events: OAuthManagerEvents = { onNeedsAuth: () => {}, onAuthorized: () => {} };
  private closed = false;

  constructor(
    readonly store: TokenStore,
    private readonly log: Logger,
  ) {}

  setEvents(events: OAuthManagerEvents): void {
    this.events = events;
  }

  /** Registers the OAuth-capable upstreams and schedules refreshes for the tokens on disk. */
  async load(configs: readonly HttpUpstreamConfig[]): Promise<void> {
    for (const config of configs) this.configs.set(config.name, config);
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
      if (!stored) continue;
      this.tokens.set(config.name, stored);
      this.schedule(config.name);
    }
  }

  /** The scope the last 401 challenge named, if any. */
  challengeScope(upstream: string): string | undefined {
    return this.challenges.get(upstream)?.scope;
  }

  /** Scopes a 403 `insufficient_scope` asked for, plus those granted: added to the next login. */
  stepUpScope(upstream: string): string | undefined {
    return this.stepUps.get(upstream);
  }

  /** Records the challenge of a 401. */
  noteChallenge(upstream: string, header: string | null): void {
    const challenge = parseChallenge(header);
    if (challenge) this.challenges.set(upstream, challenge);
  }

  /** Records a scope a 403 `insufficient_scope` asked for (step-up happens at the next login). */
  noteScope(upstream: string, scope: string | undefined): void {
    this.stepUps.set(
      upstream,
      unionScopes(this.tokens.get(upstream)?.scope, this.stepUps.get(upstream), scope) ?? '',
    );
  }

  /** The bearer provider the upstream's HTTP transport uses. */
  provider(config: HttpUpstreamConfig): BearerProvider {
    this.configs.set(config.name, config);
    // Which access token each response answered, so a 401 refreshes only if that token is still current.
    const sentWith = new WeakMap<Response, string | undefined>();
    return {
      token: async () => (await this.validToken(config.name))?.accessToken,
      fetch: async (url, init) => {
        const response = await fetch(url, init);
        if (response.status === 401) sentWith.set(response, bearerOf(init?.headers));
        return response;
      },
      onUnauthorized: async ({ response }) => {
        this.noteChallenge(config.name, response.headers.get('www-authenticate'));
        const current = this.tokens.get(config.name);
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
        await this.refresh(config.name, current.accessToken);
      },
    };
  }

  /** Stores the tokens of a finished login, and the client and server metadata they belong to. */
  async saveLogin(
    config: HttpUpstreamConfig,
    discovery: Discovery,
    client: ResolvedClient & { registration?: { clientSecret?: string; tokenEndpointAuthMethod: string } },
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
    this.configs.set(config.name, config);
    this.tokens.set(config.name, stored);
    this.challenges.delete(config.name);
    this.stepUps.delete(config.name);
    this.retryDelays.delete(config.name);
    this.schedule(config.name);
    this.log.info({ upstream: config.name, issuer: discovery.issuer, scope: tokens.scope }, 'login stored');
    this.events.onAuthorized(config.name);
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
    const config = this.configs.get(upstream);
    if (!config) return false;
    const stored = usable((await this.store.read()).tokens[upstream], config);
    if (!stored || stored.accessToken === this.tokens.get(upstream)?.accessToken) return false;
    this.tokens.set(upstream, stored);
    this.schedule(upstream);
    this.log.info({ upstream }, 'picked up a login stored by another process');
    return true;
  }

  close(): void {
    this.closed = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  /** The stored tokens, refreshed first when the access token is about to expire. */
  private async validToken(upstream: string): Promise<StoredTokens | undefined> {
    const current = this.tokens.get(upstream);
    if (!current) return undefined;
    if (!current.refreshToken || Date.now() < refreshAt(current)) return current;
    // A refresh already failed and a retry is scheduled: use the token while it lasts.
    if (this.retryDelays.has(upstream) && current.expiresAt !== undefined && Date.now() < current.expiresAt) {
      return current;
    }
    try {
      return await this.refresh(upstream, current.accessToken);
    } catch (error) {
      // A transient failure: the old access token may still be good for a moment.
      if (
        !isBridgeError(error, 'NEEDS_AUTH') &&
        current.expiresAt !== undefined &&
        Date.now() < current.expiresAt
      ) {
        return current;
      }
      throw error;
    }
  }

  /**
   * Refreshes once for everyone who saw `seenAccessToken`: concurrent callers share one request, and
   * a caller that arrives after another process already refreshed just gets the new tokens.
   */
  refresh(upstream: string, seenAccessToken: string | undefined): Promise<StoredTokens> {
    const pending = this.refreshing.get(upstream);
    if (pending) return pending;
    const work = this.refreshLocked(upstream, seenAccessToken).finally(() =>
      this.refreshing.delete(upstream),
    );
    this.refreshing.set(upstream, work);
    return work;
  }

  private async refreshLocked(upstream: string, seenAccessToken: string | undefined): Promise<StoredTokens> {
    try {
      return await this.refreshOnce(upstream, seenAccessToken);
    } catch (error) {
      if (isBridgeError(error, 'NEEDS_AUTH')) throw error;
      // Network, 5xx, lock, read or write failures: keep what we have and try again later.
      this.log.warn({ upstream, err: errorMessage(error) }, 'token refresh failed; keeping the old tokens');
      this.scheduleRetry(upstream);
      throw new BridgeError('OAUTH_TOKEN_FAILED', `upstream "${upstream}": ${errorMessage(error)}`, {
        cause: error,
      });
    }
  }

  private async refreshOnce(upstream: string, seenAccessToken: string | undefined): Promise<StoredTokens> {
    const configured = this.configs.get(upstream);
    if (!configured) throw new BridgeError('INTERNAL', `no OAuth config for upstream "${upstream}"`);
    const config = (await resolveOpRefs(configured)) as HttpUpstreamConfig;
    type Outcome = { tokens: StoredTokens } | { error: unknown };
    const outcome = await this.store.update<Outcome>(async (state) => {
      const stored = usable(state.tokens[upstream], config);
      if (!stored?.refreshToken) {
        return { write: false, value: { error: needsAuthError(upstream, 'no refresh token is stored') } };
      }
      if (stored.accessToken !== seenAccessToken && Date.now() < refreshAt(stored)) {
        return { write: false, value: { tokens: stored } };
      }
      // A refresh succeeded but its write failed: the file still has the spent refresh token.
      const unwritten = this.unwritten.get(upstream);
      if (unwritten && unwritten.replaces === stored.refreshToken) {
        state.tokens[upstream] = unwritten.tokens;
        return { write: true, value: { tokens: unwritten.tokens } };
      }
      const authServer = state.authServers[stored.issuer] as AuthorizationServer | undefined;
      if (!authServer?.token_endpoint) {
        return {
          write: false,
          value: { error: needsAuthError(upstream, `the metadata of ${stored.issuer} is not stored`) },
        };
      }
      const client = await this.clientFor(config, stored, state, authServer);
      let fresh: TokenSet;
      try {
        fresh = await refreshTokens({
          authServer,
          client,
          refreshToken: stored.refreshToken,
          resource: stored.resource,
        });
      } catch (error) {
        if (error instanceof RefreshError && error.permanent) {
          // The grant is gone; keep no dead tokens around, or every start would try them again.
          delete state.tokens[upstream];
          return { write: true, value: { error: needsAuthError(upstream, error.message, error) } };
        }
        return { write: false, value: { error } };
      }
      const next: StoredTokens = {
        ...stored,
        accessToken: fresh.accessToken,
        tokenType: fresh.tokenType,
        // Without rotation the server keeps the old refresh token valid.
        refreshToken: fresh.refreshToken ?? stored.refreshToken,
        expiresAt: fresh.expiresAt,
        scope: fresh.scope ?? stored.scope,
        obtainedAt: Date.now(),
      };
      state.tokens[upstream] = next;
      this.unwritten.set(upstream, { replaces: stored.refreshToken, tokens: next });
      return { write: true, value: { tokens: next } };
    });
    this.unwritten.delete(upstream);
    if ('tokens' in outcome) {
      this.tokens.set(upstream, outcome.tokens);
      this.retryDelays.delete(upstream);
      this.schedule(upstream);
      this.log.info({ upstream, expiresAt: outcome.tokens.expiresAt }, 'access token refreshed');
      return outcome.tokens;
    }
    const error = outcome.error;
    if (isBridgeError(error, 'NEEDS_AUTH')) {
      this.tokens.delete(upstream);
      this.cancelTimer(upstream);
      this.log.warn({ upstream, err: error.message }, 'OAuth grant is gone');
      this.events.onNeedsAuth(upstream, error);
      throw error;
    }
    throw error;
  }

  private async clientFor(
    config: HttpUpstreamConfig,
    stored: StoredTokens,
    state: OAuthState,
    authServer: AuthorizationServer,
  ): Promise<ResolvedClient> {
    const registered = state.clients[clientKey(stored.issuer, stored.clientId)];
    const fromConfig = config.oauth.clientId === stored.clientId;
    return resolveClient(
      { resource: stored.resource, issuer: stored.issuer, authServer },
      fromConfig ? config.oauth : {},
      '',
      {
        clientId: stored.clientId,
        clientSecret: registered?.clientId === stored.clientId ? registered.clientSecret : undefined,
        tokenEndpointAuthMethod:
          registered?.clientId === stored.clientId ? registered.tokenEndpointAuthMethod : 'none',
      },
    );
  }

  private schedule(upstream: string): void {
    this.cancelTimer(upstream);
    const tokens = this.tokens.get(upstream);
    if (this.closed || !tokens?.refreshToken || tokens.expiresAt === undefined) return;
    this.arm(upstream, refreshAt(tokens) - Date.now());
  }

  private scheduleRetry(upstream: string): void {
    const delay = this.retryDelays.get(upstream) ?? RETRY_MIN_MS;
    this.retryDelays.set(upstream, Math.min(delay * 2, RETRY_MAX_MS));
    this.arm(upstream, delay * (0.8 + Math.random() * 0.4));
  }

  private arm(upstream: string, delayMs: number): void {
    this.cancelTimer(upstream);
    if (this.closed) return;
    // setTimeout fires at once for delays past 2^31-1 ms (~24.8 days): long-lived tokens re-arm.
    const timer = setTimeout(
      () => {
        this.timers.delete(upstream);
        const tokens = this.tokens.get(upstream);
        if (!tokens) return;
        if (!this.retryDelays.has(upstream) && Date.now() < refreshAt(tokens) - 50) {
          this.schedule(upstream);
          return;
        }
        // Errors are logged and handled (retry or needs_auth) inside refresh.
        this.refresh(upstream, tokens.accessToken).catch(() => {});
      },
      Math.min(Math.max(0, delayMs), MAX_TIMER_MS),
    );
    timer.unref();
    this.timers.set(upstream, timer);
  }

  private cancelTimer(upstream: string): void {
    const timer = this.timers.get(upstream);
    if (timer) clearTimeout(timer);
    this.timers.delete(upstream);
  }
}

function bearerOf(headers: RequestInit['headers']): string | undefined {
  const value = new Headers(headers).get('authorization');
  return value?.replace(/^bearer\s+/i, '') ?? undefined;
}

/** Stored tokens apply only to the URL they were obtained for. */
function usable(tokens: StoredTokens | undefined, config: HttpUpstreamConfig): StoredTokens | undefined {
  return tokens && tokens.serverUrl === config.url ? tokens : undefined;
}

/**
 * When to refresh: a quarter of the lifetime before expiry (at most a minute, at least half a
 * second), but never sooner than half the lifetime (and half a second) after the tokens were
 * obtained, so a server handing out tokens that live less than a round trip cannot cause a loop.
 */
function refreshAt(tokens: StoredTokens): number {
  if (tokens.expiresAt === undefined) return Number.POSITIVE_INFINITY;
  const lifetime = Math.max(0, tokens.expiresAt - tokens.obtainedAt);
  const lead = Math.min(MAX_LEAD_MS, Math.max(MIN_LEAD_MS, lifetime / 4));
  return Math.max(tokens.expiresAt - lead, tokens.obtainedAt + Math.max(lifetime / 2, MIN_LEAD_MS));
}

/** Registrations are per authorization server and client (RFC 6749 §2.2). */
function clientKey(issuer: string, clientId: string): string {
  return `${issuer} ${clientId}`;
}

export function unionScopes(...scopes: (string | undefined)[]): string | undefined {
  const all = new Set(scopes.flatMap((s) => (s ? s.split(/\s+/).filter(Boolean) : [])));
  return all.size === 0 ? undefined : [...all].join(' ');
}

/** The metadata as plain JSON (oauth4webapi objects may carry symbol keys). */
function plainMetadata(as: AuthorizationServer): OAuthState['authServers'][string] {
  return JSON.parse(JSON.stringify(as));
}
