import { resolveOpRefs } from '../config/op-refs.js';
import type { HttpUpstreamConfig } from '../config/schema.js';
import { BridgeError, errorMessage, isBridgeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Challenge } from './discovery.js';
import type { OAuthFetch } from './oauth-http.js';
import { jittered, MAX_TIMER_MS, RETRY_MAX_MS, RETRY_MIN_MS, refreshAt } from './refresh-schedule.js';
import { type RefreshOutcome, refreshInFile, type Unwritten } from './token-refresh.js';
import type { StoredTokens, TokenFile } from './token-store.js';

export interface OAuthManagerEvents {
  /** The upstream's grant is gone (or it never had one): it needs `npm run auth`. */
  readonly onNeedsAuth: (upstream: string, error: BridgeError) => void;
  /** New tokens were stored after a login. */
  readonly onAuthorized: (upstream: string) => void;
  /** A refresh ended: new tokens, a temporary failure (retried), or the grant is gone (/metrics). */
  readonly onRefresh?: ((upstream: string, outcome: RefreshResult) => void) | undefined;
}

/** How a refresh of the access token ended; `invalid_grant`: a new login is needed. */
export type RefreshResult = 'ok' | 'failed' | 'invalid_grant';

/** What every upstream's state shares with the manager. */
export interface OAuthDeps {
  readonly store: TokenFile;
  readonly log: Logger;
  readonly events: OAuthManagerEvents;
  /** For requests to the token endpoint; the global fetch unless a test injects one. */
  readonly fetch?: OAuthFetch | undefined;
}

/**
 * One OAuth upstream: its tokens, the timer that refreshes them ahead of expiry, the one refresh in
 * flight, the backoff after a failed one, and what its last 401 and 403 asked for.
 */
export class OAuthUpstreamState {
  tokens: StoredTokens | undefined;
  /** The last 401 challenge (its scope is requested at the next login). */
  challenge: Challenge | undefined;
  /** Scopes to add at the next login (step-up after a 403 `insufficient_scope`). */
  stepUp: string | undefined;
  /** When this process last refreshed the access token, and how that went (the status page). */
  lastRefresh: { readonly at: number; readonly outcome: RefreshResult } | undefined;
  private refreshing: Promise<StoredTokens> | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** The next retry delay; set while refreshes are failing. */
  private retryDelay: number | undefined;
  private unwritten: Unwritten | undefined;
  private closed = false;

  constructor(
    public config: HttpUpstreamConfig,
    private readonly deps: OAuthDeps,
  ) {}

  get name(): string {
    return this.config.name;
  }

  /** Takes tokens read from the file (or a login: then the failures and scopes before it are over). */
  use(tokens: StoredTokens, login = false): void {
    this.tokens = tokens;
    if (login) {
      this.challenge = undefined;
      this.stepUp = undefined;
      this.retryDelay = undefined;
    }
    this.schedule();
  }

  /** The stored tokens, refreshed first when the access token is about to expire. */
  async validToken(): Promise<StoredTokens | undefined> {
    const current = this.tokens;
    if (!current) return undefined;
    if (!current.refreshToken || Date.now() < refreshAt(current)) return current;
    const stillValid = current.expiresAt !== undefined && Date.now() < current.expiresAt;
    // A refresh already failed and a retry is scheduled: use the token while it lasts.
    if (this.retryDelay !== undefined && stillValid) return current;
    try {
      return await this.refresh(current.accessToken);
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
  refresh(seenAccessToken: string | undefined): Promise<StoredTokens> {
    if (this.refreshing) return this.refreshing;
    const work = this.refreshOrRetry(seenAccessToken).finally(() => {
      this.refreshing = undefined;
    });
    this.refreshing = work;
    return work;
  }

  close(): void {
    this.closed = true;
    this.cancelTimer();
  }

  private async refreshOrRetry(seenAccessToken: string | undefined): Promise<StoredTokens> {
    try {
      return await this.refreshOnce(seenAccessToken);
    } catch (error) {
      if (isBridgeError(error, 'NEEDS_AUTH')) throw error;
      // Network, 5xx, lock, read or write failures: keep what we have and try again later.
      this.deps.log.warn(
        { upstream: this.name, err: errorMessage(error) },
        'token refresh failed; keeping the old tokens',
      );
      this.scheduleRetry();
      this.refreshed('failed');
      throw new BridgeError('OAUTH_TOKEN_FAILED', `upstream "${this.name}": ${errorMessage(error)}`, {
        cause: error,
      });
    }
  }

  private async refreshOnce(seenAccessToken: string | undefined): Promise<StoredTokens> {
    const config = (await resolveOpRefs(this.config)) as HttpUpstreamConfig;
    const outcome: RefreshOutcome = await this.deps.store.update((state) =>
      refreshInFile(state, {
        upstream: this.name,
        config,
        seenAccessToken,
        unwritten: this.unwritten,
        remember: (unwritten) => {
          this.unwritten = unwritten;
        },
        fetch: this.deps.fetch,
      }),
    );
    this.unwritten = undefined;
    if ('tokens' in outcome) {
      this.tokens = outcome.tokens;
      this.retryDelay = undefined;
      this.schedule();
      this.deps.log.info(
        { upstream: this.name, expiresAt: outcome.tokens.expiresAt },
        'access token refreshed',
      );
      this.refreshed('ok');
      return outcome.tokens;
    }
    const error = outcome.error;
    if (isBridgeError(error, 'NEEDS_AUTH')) {
      this.tokens = undefined;
      this.cancelTimer();
      this.deps.log.warn({ upstream: this.name, err: error.message }, 'OAuth grant is gone');
      this.refreshed('invalid_grant');
      this.deps.events.onNeedsAuth(this.name, error);
    }
    throw error;
  }

  private refreshed(outcome: RefreshResult): void {
    this.lastRefresh = { at: Date.now(), outcome };
    this.deps.events.onRefresh?.(this.name, outcome);
  }

  private schedule(): void {
    this.cancelTimer();
    const tokens = this.tokens;
    if (this.closed || !tokens?.refreshToken || tokens.expiresAt === undefined) return;
    this.arm(refreshAt(tokens) - Date.now());
  }

  private scheduleRetry(): void {
    const delay = this.retryDelay ?? RETRY_MIN_MS;
    this.retryDelay = Math.min(delay * 2, RETRY_MAX_MS);
    this.arm(jittered(delay));
  }

  private arm(delayMs: number): void {
    this.cancelTimer();
    if (this.closed) return;
    // Long-lived tokens re-arm: a timer cannot wait longer than MAX_TIMER_MS.
    const timer = setTimeout(
      () => {
        this.timer = undefined;
        const tokens = this.tokens;
        if (!tokens) return;
        if (this.retryDelay === undefined && Date.now() < refreshAt(tokens) - 50) {
          this.schedule();
          return;
        }
        // Errors are logged and handled (retry or needs_auth) inside refresh.
        this.refresh(tokens.accessToken).catch(() => {});
      },
      Math.min(Math.max(0, delayMs), MAX_TIMER_MS),
    );
    timer.unref();
    this.timer = timer;
  }

  private cancelTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
