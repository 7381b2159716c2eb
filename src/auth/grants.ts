import * as oauth from 'oauth4webapi';
import { BridgeError, errorMessage } from '../errors.js';
import type { Discovery } from './discovery.js';
import { describeOAuthError, type OAuthFetch, requestOptions } from './oauth-http.js';
import type { ResolvedClient } from './registration.js';

/**
 * The grants: the PKCE authorization request, the code exchange with `state` and `iss` (RFC 9207)
 * checks, and refresh, always with the RFC 8707 `resource`.
 */

export interface TokenSet {
  readonly accessToken: string;
  readonly tokenType: string;
  readonly refreshToken?: string | undefined;
  /** Absolute expiry, epoch ms. */
  readonly expiresAt?: number | undefined;
  readonly scope?: string | undefined;
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
    throw new BridgeError('OAUTH_CALLBACK_INVALID', callbackProblem(error, as, options.callback), {
      cause: error,
    });
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

function callbackProblem(error: unknown, as: oauth.AuthorizationServer, callback: URLSearchParams): string {
  if (error instanceof oauth.AuthorizationResponseError) {
    return `the authorization server returned an error: ${error.error}${error.error_description ? ` (${error.error_description})` : ''}`;
  }
  // oauth4webapi reports both as INVALID_RESPONSE, checking `iss` first (and a JARM `response`
  // before either); the parameters tell which one is off.
  if (
    error instanceof oauth.OperationProcessingError &&
    error.code === oauth.INVALID_RESPONSE &&
    !callback.has('response')
  ) {
    const iss = callback.getAll('iss');
    const issOk =
      iss.length === 0
        ? as.authorization_response_iss_parameter_supported !== true
        : iss.length === 1 && iss[0] === as.issuer;
    if (!issOk) {
      return `the callback's "iss" does not name the authorization server ${as.issuer} (RFC 9207); refusing the response, which may come from a mix-up attack`;
    }
    return 'the callback\'s "state" does not match the login in progress (a stale or forged callback); start the login again';
  }
  return `invalid authorization response: ${errorMessage(error)}`;
}

/** Spends a refresh token. Throws a `RefreshError`, `permanent` when the grant is gone (log in again). */
export async function refreshTokens(options: {
  readonly authServer: oauth.AuthorizationServer;
  readonly client: ResolvedClient;
  readonly refreshToken: string;
  readonly resource: string;
  readonly fetch?: OAuthFetch | undefined;
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
        ...requestOptions(as.token_endpoint as string, options.fetch),
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
