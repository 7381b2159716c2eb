import * as oauth from 'oauth4webapi';
import { isLoopbackHostname } from '../config/schema.js';
import { BridgeError, errorMessage } from '../errors.js';

/** How the OAuth steps send their requests, and how their failures read. */

export const HTTP_TIMEOUT_MS = 15_000;

/** A stand-in for `fetch` in requests to the authorization server (tests inject a token endpoint). */
export type OAuthFetch = (url: string, init: RequestInit) => Promise<Response>;

export function requestOptions(
  url: string | URL,
  fetchImpl?: OAuthFetch,
): {
  [oauth.allowInsecureRequests]?: boolean;
  [oauth.customFetch]?: OAuthFetch;
  signal: AbortSignal;
} {
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
    ...(fetchImpl ? { [oauth.customFetch]: fetchImpl } : {}),
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
