import type { ServerResponse } from 'node:http';
import { bearerOf } from '../access/access-guard.js';
import { sendHttpError } from '../server/http-error.js';
import type { OAuthStore } from './oauth-store.js';

export type BearerResult =
  | { readonly ok: true; readonly clientId: string; readonly grantId: string }
  | {
      readonly ok: false;
      readonly code: 'BEARER_TOKEN_REQUIRED' | 'BEARER_TOKEN_INVALID';
      readonly why: string;
    };

/** RFC 9728's path form: `/.well-known/oauth-protected-resource` + the resource's path. */
export function resourceMetadataUrl(issuer: string, mcpPath: string): string {
  return `${issuer}/.well-known/oauth-protected-resource${mcpPath}`;
}

/**
 * The resource server's side of the bridge's own AS: a bearer token must be one it issued, for
 * this resource, unexpired, under a live grant. Synchronous (a lookup in the store's memory), so
 * the hot path can run it before reading the body. The token itself is never passed on.
 */
export class BearerCheck {
  constructor(
    private readonly store: OAuthStore,
    private readonly resource: string,
    private readonly metadataUrl: string,
  ) {}

  check(authorization: string | undefined): BearerResult {
    const token = bearerOf(authorization);
    if (token === undefined) return { ok: false, code: 'BEARER_TOKEN_REQUIRED', why: 'no bearer token' };
    const payload = token ? this.store.find('AccessToken', token) : undefined;
    const invalid = (why: string): BearerResult => ({ ok: false, code: 'BEARER_TOKEN_INVALID', why });
    if (!payload) return invalid('the token is unknown or revoked');
    if (typeof payload.exp !== 'number' || payload.exp * 1000 <= Date.now())
      return invalid('the token has expired');
    const aud = payload.aud;
    if (!(aud === this.resource || (Array.isArray(aud) && aud.length === 1 && aud[0] === this.resource))) {
      return invalid(`the token was issued for another resource, not ${this.resource}`);
    }
    if (!payload.grantId || !payload.clientId || !this.store.hasGrant(payload.grantId)) {
      return invalid('the grant of the token was revoked');
    }
    this.store.touch(payload.clientId);
    return { ok: true, clientId: payload.clientId, grantId: payload.grantId };
  }

  /** The 401 (RFC 6750 / RFC 9728): the client finds the authorization server from its header. */
  refuse(
    res: ServerResponse,
    result: Extract<BearerResult, { ok: false }>,
    id: string | number | null = null,
  ): void {
    const error = result.code === 'BEARER_TOKEN_INVALID' ? ', error="invalid_token"' : '';
    res.setHeader('WWW-Authenticate', `Bearer resource_metadata="${this.metadataUrl}"${error}`);
    sendHttpError(
      res,
      result.code,
      result.code === 'BEARER_TOKEN_REQUIRED'
        ? `this endpoint needs an OAuth access token from its authorization server; see ${this.metadataUrl}`
        : `the access token is not valid here (${result.why}); refresh it or connect again`,
      { id },
    );
  }
}
