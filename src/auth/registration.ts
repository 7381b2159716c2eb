import * as oauth from 'oauth4webapi';
import { BridgeError } from '../errors.js';
import type { Discovery } from './discovery.js';
import { describeOAuthError, requestOptions } from './oauth-http.js';

/**
 * Which client id the bridge uses at an authorization server, and how it authenticates: the
 * config's `clientId`, a Client ID Metadata Document, a stored registration, or dynamic
 * registration (RFC 7591).
 */

export interface ClientSettings {
  readonly clientId?: string | undefined;
  readonly clientSecret?: string | undefined;
  readonly clientMetadataUrl?: string | undefined;
}

export interface ResolvedClient {
  readonly client: oauth.Client;
  readonly auth: oauth.ClientAuth;
  /** How the client id was obtained. */
  readonly source: 'config' | 'metadata-document' | 'registered';
}

/** What a dynamic registration returned, to be stored with the login. */
export interface Registration {
  readonly clientSecret?: string;
  readonly tokenEndpointAuthMethod: string;
}

/** A stored registration for the issuer and redirect URI. */
export interface RegisteredClient {
  readonly clientId: string;
  readonly clientSecret?: string | undefined;
  readonly tokenEndpointAuthMethod: string;
}

/** A client from the config, a Client ID Metadata Document, or dynamic registration. */
export async function resolveClient(
  discovery: Discovery,
  settings: ClientSettings,
  redirectUri: string,
  registered: RegisteredClient | undefined,
): Promise<ResolvedClient & { registration?: Registration }> {
  const as = discovery.authServer;
  if (settings.clientId) {
    const method = settings.clientSecret
      ? as.token_endpoint_auth_methods_supported?.includes('client_secret_basic') === false
        ? 'client_secret_post'
        : 'client_secret_basic'
      : 'none';
    return withAuth(
      { client_id: settings.clientId, token_endpoint_auth_method: method },
      settings.clientSecret,
      'config',
    );
  }
  if (settings.clientMetadataUrl && as.client_id_metadata_document_supported === true) {
    return withAuth(
      { client_id: settings.clientMetadataUrl, token_endpoint_auth_method: 'none' },
      undefined,
      'metadata-document',
    );
  }
  if (registered) {
    return withAuth(
      { client_id: registered.clientId, token_endpoint_auth_method: registered.tokenEndpointAuthMethod },
      registered.clientSecret,
      'registered',
    );
  }
  if (!as.registration_endpoint) {
    throw new BridgeError(
      'OAUTH_UNSUPPORTED',
      `the authorization server ${discovery.issuer} does not support dynamic client registration; register a client there and set "oauth": {"clientId": …} for this server in the config`,
      { details: { issuer: discovery.issuer } },
    );
  }
  let client: Record<string, unknown>;
  try {
    const response = await oauth.dynamicClientRegistrationRequest(
      as,
      {
        client_name: 'mcp-bridge',
        redirect_uris: [redirectUri],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
        application_type: 'native',
      },
      requestOptions(as.registration_endpoint),
    );
    client = await registrationResponse(response);
  } catch (error) {
    throw new BridgeError(
      'OAUTH_REGISTRATION_FAILED',
      `dynamic client registration at ${as.registration_endpoint} failed: ${describeOAuthError(error)}; set "oauth": {"clientId": …} in the config to use a pre-registered client`,
      { cause: error, details: { issuer: discovery.issuer } },
    );
  }
  const secret = typeof client.client_secret === 'string' ? client.client_secret : undefined;
  const method = String(client.token_endpoint_auth_method ?? (secret ? 'client_secret_basic' : 'none'));
  const resolved = withAuth(
    { client_id: String(client.client_id), token_endpoint_auth_method: method },
    secret,
    'registered',
  );
  return {
    ...resolved,
    registration: { ...(secret ? { clientSecret: secret } : {}), tokenEndpointAuthMethod: method },
  };
}

function withAuth(
  client: oauth.Client,
  secret: string | undefined,
  source: ResolvedClient['source'],
): ResolvedClient {
  const method = client.token_endpoint_auth_method;
  const auth =
    secret === undefined || method === 'none'
      ? oauth.None()
      : method === 'client_secret_post'
        ? oauth.ClientSecretPost(secret)
        : clientSecretBasic(secret);
  return { client, auth, source };
}

/**
 * RFC 6749 §2.3.1 basic authentication with form encoding of the id and secret. oauth4webapi also
 * escapes characters such as "-" that form encoding leaves alone, which some servers do not decode.
 */
function clientSecretBasic(secret: string): oauth.ClientAuth {
  const encode = (value: string) => new URLSearchParams({ v: value }).toString().slice(2);
  return (_as, client, _body, headers) => {
    const credentials = `${encode(client.client_id)}:${encode(secret)}`;
    headers.set('authorization', `Basic ${Buffer.from(credentials).toString('base64')}`);
  };
}

/**
 * The registration response, read leniently: only `client_id` is required (servers differ on the
 * optional fields, e.g. `client_secret_expires_at`, and a login should not fail over them).
 */
async function registrationResponse(response: Response): Promise<Record<string, unknown>> {
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`HTTP ${response.status}, not JSON: ${text.slice(0, 200)}`);
  }
  const record = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  if (!response.ok) {
    const description = typeof record.error_description === 'string' ? ` (${record.error_description})` : '';
    throw new Error(`HTTP ${response.status}: ${String(record.error ?? 'error')}${description}`);
  }
  if (typeof record.client_id !== 'string' || record.client_id === '') {
    throw new Error(`HTTP ${response.status} without a client_id`);
  }
  return record;
}
