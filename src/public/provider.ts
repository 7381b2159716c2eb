import type Provider from 'oidc-provider';
import type { Configuration, KoaContextWithOIDC } from 'oidc-provider';
import type { PublicConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import { renderMessagePage } from './consent-page.js';
import type { OAuthStore } from './oauth-store.js';
import type { ProviderKeys } from './provider-keys.js';
import { redirectAllowed } from './redirect-policy.js';

/** The one account: the owner who typed the password. */
export const OWNER_ACCOUNT = 'owner';
/** The scope tokens for the MCP endpoint carry (advertised; the endpoint accepts any token for it). */
export const MCP_SCOPE = 'mcp';
/** Path of the consent page; oidc-provider sends the browser there with the interaction's uid. */
export const CONSENT_PATH = '/consent';
const MAX_REDIRECT_URIS = 10;
const MAX_CLIENT_NAME = 200;
const MAX_CLIENT_METADATA_BYTES = 8192;
/** A hidden client metadata key: its validator is where oidc-provider lets us check every registration. */
const POLICY_KEY = 'mcp_bridge_policy';

export interface ProviderOptions {
  readonly config: PublicConfig;
  /** The protected resource: public.url + mcpPath. */
  readonly resource: string;
  readonly store: OAuthStore;
  readonly keys: ProviderKeys;
  readonly logger: Logger;
  /**
   * Replaces the fetch of Client ID Metadata Documents (tests serve them over https on
   * loopback, which the built-in SSRF protection refuses).
   */
  readonly fetch?: typeof fetch | undefined;
}

/**
 * The bridge's own OAuth 2.1 authorization server: oidc-provider with dynamic registration and
 * Client ID Metadata Documents, PKCE S256 always, exact redirect URIs from an allow-list, RFC 9207
 * `iss`, RFC 8707 tokens bound to the one resource, and refresh tokens always issued and rotated
 * on every use (a spent one revokes its grant: oidc-provider does that itself).
 */
export async function createProvider(options: ProviderOptions): Promise<Provider> {
  const { config, resource, store, keys, logger } = options;
  const { default: ProviderClass, errors } = await loadOidcProvider(logger);
  const refreshTtl = config.refreshTokenTtlSeconds;
  const configuration: Configuration = {
    adapter: store.adapter(),
    jwks: { keys: [keys.signingKey as never] },
    cookies: { keys: [...keys.cookieKeys] },
    routes: {
      authorization: '/authorize',
      token: '/token',
      registration: '/register',
      revocation: '/revoke',
      jwks: '/jwks',
    },
    clientAuthMethods: ['none', 'client_secret_post', 'client_secret_basic'],
    clientDefaults: {
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
    },
    responseTypes: ['code'],
    // 'mcp' too: clients register with the scopes of the protected resource metadata.
    scopes: ['openid', 'offline_access', MCP_SCOPE],
    claims: { openid: ['sub'] },
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: false },
      // Bearer tokens only: the MCP endpoint does not check DPoP proofs.
      dPoP: { enabled: false },
      introspection: { enabled: false },
      userinfo: { enabled: false },
      rpInitiatedLogout: { enabled: false },
      registration: { enabled: true, initialAccessToken: false },
      // Only a client's own tokens (revoking one of another client's is refused, not reported).
      revocation: {
        enabled: true,
        allowedPolicy: (_ctx, client, token) => token.clientId === client.clientId,
      },
      // Nothing of MCP needs pushed requests: one endpoint fewer on the internet.
      pushedAuthorizationRequests: { enabled: false },
      clientIdMetadataDocument: {
        enabled: true,
        ack: 'draft-02',
        cacheDuration: { min: 300, max: 86_400 },
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => resource,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, requested) => {
          if (requested !== resource) {
            throw new errors.InvalidTarget(`this server only issues tokens for ${resource}`);
          }
          return {
            scope: MCP_SCOPE,
            audience: resource,
            accessTokenTTL: config.accessTokenTtlSeconds,
            accessTokenFormat: 'opaque',
          };
        },
      },
    },
    extraClientMetadata: {
      properties: [POLICY_KEY],
      // Runs for every registration, every CIMD document and every client loaded from the store.
      validator(_ctx, key, _value, metadata) {
        if (key !== POLICY_KEY) return;
        const record = metadata as Record<string, unknown>;
        delete record[POLICY_KEY];
        // Registration is open to the internet: what a client may store is kept small.
        delete record.sector_identifier_uri;
        const uris: unknown = metadata.redirect_uris ?? [];
        if (
          !Array.isArray(uris) ||
          uris.length > MAX_REDIRECT_URIS ||
          uris.some((u) => typeof u !== 'string')
        ) {
          throw new errors.InvalidRedirectUri(`redirect_uris must be at most ${MAX_REDIRECT_URIS} strings`);
        }
        if (typeof record.client_name === 'string' && record.client_name.length > MAX_CLIENT_NAME) {
          throw new errors.InvalidClientMetadata(`client_name must be at most ${MAX_CLIENT_NAME} characters`);
        }
        if (JSON.stringify(record).length > MAX_CLIENT_METADATA_BYTES) {
          throw new errors.InvalidClientMetadata(
            `client metadata must be at most ${MAX_CLIENT_METADATA_BYTES} bytes`,
          );
        }
        for (const uri of uris as string[]) {
          if (!redirectAllowed(uri, config.redirectUris)) {
            throw new errors.InvalidRedirectUri(
              `redirect_uri ${uri} is not allowed: only ChatGPT's and Claude's callbacks, loopback addresses and the URIs in public.redirectUris are`,
            );
          }
        }
        // Refresh tokens whether or not the client asked for them: a connector must survive the
        // access token's hour without the owner typing the password again.
        const grants = metadata.grant_types ?? ['authorization_code'];
        if (grants.includes('authorization_code') && !grants.includes('refresh_token')) {
          metadata.grant_types = [...grants, 'refresh_token'];
        }
      },
    },
    interactions: { url: (_ctx, interaction) => `${CONSENT_PATH}/${interaction.uid}` },
    // Only the grant of the consent just given: every new authorization asks for the password,
    // however recently the owner typed it.
    loadExistingGrant: async (ctx) => {
      const grantId = ctx.oidc.result?.consent?.grantId;
      return grantId ? ctx.oidc.provider.Grant.find(grantId) : undefined;
    },
    findAccount: (_ctx, sub) => ({ accountId: sub, claims: () => ({ sub }) }),
    issueRefreshToken: (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: true,
    // Tokens outlive the consent's browser session by design.
    expiresWithSession: () => false,
    clientBasedCORS: () => true,
    ttl: {
      AccessToken: config.accessTokenTtlSeconds,
      AuthorizationCode: 60,
      Grant: refreshTtl,
      Interaction: 600,
      RefreshToken: refreshTtl,
      Session: 600,
      IdToken: 3600,
    },
    renderError: (ctx, out) => {
      ctx.type = 'html';
      ctx.body = renderMessagePage({
        title: 'The connection could not be made',
        message: `${out.error}${out.error_description ? `: ${out.error_description}` : ''}`,
      });
    },
    ...(options.fetch ? { fetch: options.fetch } : {}),
  };
  const provider = new ProviderClass(config.url, configuration);
  // The tunnel ends TLS; the issuer says what the browser saw (see public-app.ts).
  provider.proxy = true;
  logEvents(provider, logger);
  return provider;
}

/**
 * oidc-provider, loaded only by daemons with a public listener. Its import-time runtime notice
 * (it asks for Node 22, and runs on 20) goes to the log instead of the daemon's stderr.
 */
async function loadOidcProvider(logger: Logger): Promise<typeof import('oidc-provider')> {
  const { warn } = console;
  console.warn = (...args: unknown[]) => {
    if (typeof args[0] === 'string' && args[0].startsWith('oidc-provider WARNING: Unsupported runtime')) {
      logger.warn(
        { node: process.version },
        "oidc-provider (the public listener's authorization server) prefers Node 22 or newer",
      );
      return;
    }
    warn.apply(console, args);
  };
  try {
    return await import('oidc-provider');
  } finally {
    console.warn = warn;
  }
}

/** One log line per registration, token issue, spent-token reuse and revocation; never a token. */
function logEvents(provider: Provider, logger: Logger): void {
  const client = (ctx: KoaContextWithOIDC) => ({
    clientId: ctx.oidc?.client?.clientId,
    clientName: ctx.oidc?.client?.clientName,
  });
  provider.on('registration_create.success', (ctx: KoaContextWithOIDC) =>
    logger.info({ ...client(ctx), redirectUris: ctx.oidc.client?.redirectUris }, 'connector registered'),
  );
  provider.on('grant.success', (ctx: KoaContextWithOIDC) =>
    logger.info(
      { ...client(ctx), grant: ctx.oidc.params?.grant_type, grantId: ctx.oidc.entities.Grant?.jti },
      'connector token issued',
    ),
  );
  provider.on('grant.error', (ctx: KoaContextWithOIDC, error: Error & { error_detail?: string }) => {
    const reuse = error.error_detail === 'refresh token already used';
    logger.warn(
      { ...client(ctx), err: error.message, detail: error.error_detail },
      reuse
        ? 'a spent refresh token was used again: its grant is revoked, the connector must connect again'
        : 'connector token request refused',
    );
  });
  provider.on('grant.revoked', (ctx: KoaContextWithOIDC, grantId: string) =>
    logger.warn({ ...client(ctx), grantId }, 'connector grant revoked'),
  );
  provider.on('registration_create.error', (_ctx: KoaContextWithOIDC, error: Error) =>
    logger.warn({ err: error.message }, 'connector registration refused'),
  );
  provider.on('authorization.error', (ctx: KoaContextWithOIDC, error: Error) =>
    logger.info({ ...client(ctx), err: error.message }, 'connector authorization refused'),
  );
  provider.on('server_error', (_ctx: KoaContextWithOIDC, error: Error) =>
    logger.error({ err: error.message }, 'authorization server error'),
  );
}
