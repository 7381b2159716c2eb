import type { AuthorizationServer } from 'oauth4webapi';
import type { HttpUpstreamConfig } from '../config/schema.js';
import { RefreshError, refreshTokens, type TokenSet } from './grants.js';
import { needsAuthError } from './needs-auth.js';
import type { OAuthFetch } from './oauth-http.js';
import { refreshAt } from './refresh-schedule.js';
import { type ResolvedClient, resolveClient } from './registration.js';
import { clientKey, type OAuthState, type StoredTokens } from './token-store.js';

/** Tokens a refresh obtained but could not write yet, with the refresh token they replace. */
export interface Unwritten {
  readonly replaces: string;
  readonly tokens: StoredTokens;
}

export type RefreshOutcome = { readonly tokens: StoredTokens } | { readonly error: unknown };

/** Stored tokens apply only to the URL they were obtained for. */
export function usable(
  tokens: StoredTokens | undefined,
  config: HttpUpstreamConfig,
): StoredTokens | undefined {
  return tokens && tokens.serverUrl === config.url ? tokens : undefined;
}

/**
 * The read-refresh-write of one upstream, run on a fresh read of the token file while its lock is
 * held. If another process refreshed since `seenAccessToken`, its tokens are used without a request.
 * `remember` receives new tokens before they are written, so a failed write does not lose them.
 */
export async function refreshInFile(
  state: OAuthState,
  options: {
    readonly upstream: string;
    readonly config: HttpUpstreamConfig;
    readonly seenAccessToken: string | undefined;
    readonly unwritten: Unwritten | undefined;
    readonly remember: (unwritten: Unwritten) => void;
    readonly fetch?: OAuthFetch | undefined;
  },
): Promise<{ write: boolean; value: RefreshOutcome }> {
  const { upstream, config } = options;
  const stored = usable(state.tokens[upstream], config);
  if (!stored?.refreshToken) {
    return { write: false, value: { error: needsAuthError(upstream, 'no refresh token is stored') } };
  }
  if (stored.accessToken !== options.seenAccessToken && Date.now() < refreshAt(stored)) {
    return { write: false, value: { tokens: stored } };
  }
  // A refresh succeeded but its write failed: the file still has the spent refresh token.
  if (options.unwritten && options.unwritten.replaces === stored.refreshToken) {
    state.tokens[upstream] = options.unwritten.tokens;
    return { write: true, value: { tokens: options.unwritten.tokens } };
  }
  const authServer = state.authServers[stored.issuer] as AuthorizationServer | undefined;
  if (!authServer?.token_endpoint) {
    return {
      write: false,
      value: { error: needsAuthError(upstream, `the metadata of ${stored.issuer} is not stored`) },
    };
  }
  const client = await clientFor(config, stored, state, authServer);
  let fresh: TokenSet;
  try {
    fresh = await refreshTokens({
      authServer,
      client,
      refreshToken: stored.refreshToken,
      resource: stored.resource,
      fetch: options.fetch,
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
  options.remember({ replaces: stored.refreshToken, tokens: next });
  return { write: true, value: { tokens: next } };
}

/** The client the tokens were issued to: from the config, or as it was registered. */
async function clientFor(
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
