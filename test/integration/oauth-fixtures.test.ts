import { Client, SSEClientTransport, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ResourceServer, startResourceServer } from '../helpers/mcp-resource-server.js';
import { type AuthServer, completeConsent, startAuthServer } from '../helpers/oauth-server.js';
import { waitFor } from '../helpers/wait.js';

// These fixtures run on http://127.0.0.1, which oauth4webapi refuses unless told otherwise.
const insecure = { [oauth.allowInsecureRequests]: true } as const;
// Never fetched: completeConsent stops at the redirect to it.
const REDIRECT_URI = 'http://127.0.0.1:33418/oauth/callback';

/** Without a session this is a 400 once authenticated, so polling with it opens no sessions. */
const sessionlessList = JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/list' });

const initializeBody = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
});

function post(url: string, body: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...headers,
    },
    body,
  });
}

function challengeParam(header: string | null, name: string): string | undefined {
  return header ? new RegExp(`${name}="([^"]*)"`).exec(header)?.[1] : undefined;
}

async function discoverAs(issuer: string): Promise<oauth.AuthorizationServer> {
  const issuerUrl = new URL(issuer);
  const response = await oauth.discoveryRequest(issuerUrl, { algorithm: 'oauth2', ...insecure });
  return oauth.processDiscoveryResponse(issuerUrl, response);
}

async function register(as: oauth.AuthorizationServer): Promise<oauth.Client> {
  const response = await oauth.dynamicClientRegistrationRequest(
    as,
    {
      client_name: 'mcp-bridge fixture test',
      application_type: 'native',
      redirect_uris: [REDIRECT_URI],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    },
    insecure,
  );
  return oauth.processDynamicClientRegistrationResponse(response);
}

/** The full authorization code flow with PKCE and a resource indicator. */
async function authorize(
  as: oauth.AuthorizationServer,
  client: oauth.Client,
  resource: string,
  scope = 'mcp:read mcp:write',
): Promise<{ tokens: oauth.TokenEndpointResponse; callback: URL }> {
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const authorizationUrl = new URL(as.authorization_endpoint!);
  authorizationUrl.search = new URLSearchParams({
    response_type: 'code',
    client_id: client.client_id,
    redirect_uri: REDIRECT_URI,
    scope,
    state,
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    resource,
  }).toString();
  const callback = new URL(await completeConsent(authorizationUrl.href));
  const params = oauth.validateAuthResponse(as, client, callback, state);
  const response = await oauth.authorizationCodeGrantRequest(
    as,
    client,
    oauth.None(),
    params,
    REDIRECT_URI,
    verifier,
    { additionalParameters: { resource }, ...insecure },
  );
  return { tokens: await oauth.processAuthorizationCodeResponse(as, client, response), callback };
}

async function refresh(
  as: oauth.AuthorizationServer,
  client: oauth.Client,
  refreshToken: string,
  resource: string,
  signal?: AbortSignal,
): Promise<oauth.TokenEndpointResponse> {
  const response = await oauth.refreshTokenGrantRequest(as, client, oauth.None(), refreshToken, {
    additionalParameters: { resource },
    ...(signal ? { signal } : {}),
    ...insecure,
  });
  return oauth.processRefreshTokenResponse(as, client, response);
}

async function expectInvalidGrant(promise: Promise<unknown>): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(oauth.ResponseBodyError);
  expect((error as oauth.ResponseBodyError).error).toBe('invalid_grant');
}

async function connectMcp(url: string, token: string | undefined, kind: 'streamable' | 'sse' = 'streamable') {
  const authProvider = { token: async () => token };
  const client = new Client({ name: 'fixture-test', version: '1.0.0' });
  const transport =
    kind === 'sse'
      ? new SSEClientTransport(new URL(url), { authProvider })
      : new StreamableHTTPClientTransport(new URL(url), { authProvider });
  await client.connect(transport);
  const sessionId = () =>
    transport instanceof StreamableHTTPClientTransport ? transport.sessionId : undefined;
  return { client, sessionId };
}

async function whoami(client: Client): Promise<string> {
  const result = await client.callTool({ name: 'whoami', arguments: {} });
  const first = (result.content as Array<{ type: string; text?: string }>)[0];
  expect(first?.type).toBe('text');
  return first!.text!;
}

describe('OAuth fixtures: authorization server + protected MCP server', () => {
  let auth: AuthServer;
  let rs: ResourceServer;
  let as: oauth.AuthorizationServer;
  let client: oauth.Client;
  let tokens: oauth.TokenEndpointResponse;

  beforeAll(async () => {
    auth = await startAuthServer();
    rs = await startResourceServer({ auth });
  });

  afterAll(async () => {
    await rs?.close();
    await auth?.close();
  });

  it('challenges requests without a valid token, pointing at the protected resource metadata', async () => {
    const anonymous = await post(rs.url, initializeBody);
    expect(anonymous.status).toBe(401);
    expect(await anonymous.json()).toMatchObject({ error: expect.any(String) });
    const header = anonymous.headers.get('www-authenticate');
    expect(header).toMatch(/^Bearer /);
    expect(header).not.toContain('error=');
    expect(challengeParam(header, 'resource_metadata')).toBe(rs.resourceMetadataUrl);
    expect(challengeParam(header, 'scope')).toBe('mcp:read mcp:write');

    const bogus = await oauth
      .protectedResourceRequest(
        'not-a-token',
        'POST',
        new URL(rs.url),
        new Headers({ 'content-type': 'application/json', accept: 'application/json, text/event-stream' }),
        initializeBody,
        insecure,
      )
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(bogus).toBeInstanceOf(oauth.WWWAuthenticateChallengeError);
    const [bearer] = (bogus as oauth.WWWAuthenticateChallengeError).cause;
    expect(bearer?.scheme).toBe('bearer');
    expect(bearer?.parameters.error).toBe('invalid_token');
    expect(bearer?.parameters.resource_metadata).toBe(rs.resourceMetadataUrl);
    expect(rs.counts.unauthorized).toBe(2);
  });

  it('discovers PRM and AS metadata, registers, authorizes with PKCE + resource, and calls the server', async () => {
    const challenge = (await post(rs.url, initializeBody)).headers.get('www-authenticate');
    const prmResponse = await fetch(challengeParam(challenge, 'resource_metadata')!);
    const prm = await oauth.processResourceDiscoveryResponse(new URL(rs.url), prmResponse);
    expect(prm).toMatchObject({
      resource: rs.url,
      authorization_servers: [auth.issuer],
      scopes_supported: ['mcp:read', 'mcp:write'],
      bearer_methods_supported: ['header'],
    });
    // RFC 9728 path-inserted well-known URL, as a client without the challenge would compute it.
    const wellKnown = await oauth.resourceDiscoveryRequest(new URL(rs.url), insecure);
    expect((await oauth.processResourceDiscoveryResponse(new URL(rs.url), wellKnown)).resource).toBe(rs.url);

    as = await discoverAs(prm.authorization_servers![0]!);
    expect(as.issuer).toBe(auth.issuer);
    expect(as.code_challenge_methods_supported).toEqual(['S256']);
    expect(as.authorization_response_iss_parameter_supported).toBe(true);
    expect(as.registration_endpoint).toBeDefined();
    expect(as.grant_types_supported).toEqual(expect.arrayContaining(['authorization_code', 'refresh_token']));
    expect(as.scopes_supported).toEqual(expect.arrayContaining(['mcp:read', 'mcp:write']));
    const oidc = await oauth.processDiscoveryResponse(
      new URL(auth.issuer),
      await oauth.discoveryRequest(new URL(auth.issuer), insecure),
    );
    expect(oidc.token_endpoint).toBe(as.token_endpoint);

    client = await register(as);
    expect(client.client_id).toEqual(expect.any(String));
    expect(client.token_endpoint_auth_method).toBe('none');
    expect(auth.counts.registrations).toBe(1);

    const result = await authorize(as, client, rs.url);
    tokens = result.tokens;
    expect(result.callback.origin + result.callback.pathname).toBe(REDIRECT_URI);
    expect(result.callback.searchParams.get('iss')).toBe(auth.issuer);
    expect(tokens.token_type).toBe('bearer');
    expect(tokens.expires_in).toBe(3600);
    expect(tokens.scope).toBe('mcp:read mcp:write');
    expect(tokens.refresh_token).toEqual(expect.any(String));
    expect(auth.counts.authorizationCode).toBe(1);

    const { client: mcp } = await connectMcp(rs.url, tokens.access_token);
    try {
      const tools = await mcp.listTools();
      expect(tools.tools.map((t) => t.name).sort()).toEqual(['echo', 'whoami']);
      expect(JSON.parse(await whoami(mcp))).toEqual({
        clientId: client.client_id,
        scope: 'mcp:read mcp:write',
      });
      const echoed = await mcp.callTool({ name: 'echo', arguments: { text: 'hi' } });
      expect(echoed.content).toEqual([{ type: 'text', text: 'hi' }]);
    } finally {
      await mcp.close();
    }
    expect(rs.counts.toolCalls).toBe(2);
    expect(rs.counts.sessions).toBe(1);
  });

  it('rejects PKCE-less authorization requests', async () => {
    const url = new URL(as.authorization_endpoint!);
    url.search = new URLSearchParams({
      response_type: 'code',
      client_id: client.client_id,
      redirect_uri: REDIRECT_URI,
      scope: 'mcp:read',
      state: 'x',
      resource: rs.url,
    }).toString();
    const callback = new URL(await completeConsent(url.href));
    expect(callback.searchParams.get('error')).toBe('invalid_request');
    expect(callback.searchParams.get('error_description')).toMatch(/PKCE/);
    expect(callback.searchParams.get('iss')).toBe(auth.issuer);
  });

  it('lets a native client come back on another loopback port', async () => {
    const otherPort = REDIRECT_URI.replace(':33418/', ':33419/');
    const url = new URL(as.authorization_endpoint!);
    url.search = new URLSearchParams({
      response_type: 'code',
      client_id: client.client_id,
      redirect_uri: otherPort,
      scope: 'mcp:read',
      state: 'x',
      code_challenge: await oauth.calculatePKCECodeChallenge(oauth.generateRandomCodeVerifier()),
      code_challenge_method: 'S256',
      resource: rs.url,
    }).toString();
    const callback = new URL(await completeConsent(url.href));
    expect(callback.origin + callback.pathname).toBe(otherPort);
    expect(callback.searchParams.get('code')).toEqual(expect.any(String));
  });

  it('rotates the refresh token on every use; replaying a used one revokes the grant', async () => {
    const before = { ...auth.counts };
    const first = tokens.refresh_token!;
    const second = await refresh(as, client, first, rs.url);
    expect(second.refresh_token).toEqual(expect.any(String));
    expect(second.refresh_token).not.toBe(first);
    const third = await refresh(as, client, second.refresh_token!, rs.url);
    expect(third.refresh_token).not.toBe(second.refresh_token);
    expect(third.scope).toBe('mcp:read mcp:write');

    const { client: mcp } = await connectMcp(rs.url, third.access_token);
    expect(JSON.parse(await whoami(mcp)).clientId).toBe(client.client_id);
    await mcp.close();

    await expectInvalidGrant(refresh(as, client, first, rs.url));
    // Reuse detection revoked the whole grant: the newest refresh token and access token are dead too.
    await expectInvalidGrant(refresh(as, client, third.refresh_token!, rs.url));
    const revoked = await post(rs.url, initializeBody, { authorization: `Bearer ${third.access_token}` });
    expect(revoked.status).toBe(401);
    expect(challengeParam(revoked.headers.get('www-authenticate'), 'error')).toBe('invalid_token');

    expect(auth.counts.refreshToken - before.refreshToken).toBe(4);
    expect(auth.counts.invalidGrant - before.invalidGrant).toBe(2);
    expect(auth.counts.tokenErrors - before.tokenErrors).toBe(2);
  });

  it('answers 404 to an old Mcp-Session-Id after expireSessions', async () => {
    ({ tokens } = await authorize(as, client, rs.url));
    const { client: mcp, sessionId: currentSession } = await connectMcp(rs.url, tokens.access_token);
    const sessionId = currentSession()!;
    expect(sessionId).toEqual(expect.any(String));
    rs.expireSessions();
    const response = await post(rs.url, JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }), {
      authorization: `Bearer ${tokens.access_token}`,
      'mcp-session-id': sessionId,
      'mcp-protocol-version': '2025-06-18',
    });
    expect(response.status).toBe(404);
    await mcp.close().catch(() => {});
  });

  it('answers 401 invalid_token once an access token expires', async () => {
    auth.setAccessTokenTtl(1);
    try {
      const shortLived = await refresh(as, client, tokens.refresh_token!, rs.url);
      tokens = { ...tokens, refresh_token: shortLived.refresh_token };
      expect(shortLived.expires_in).toBe(1);
      const expired = await waitFor(async () => {
        const response = await post(rs.url, sessionlessList, {
          authorization: `Bearer ${shortLived.access_token}`,
        });
        if (response.status === 400) return undefined;
        return response;
      }, 'the access token to expire');
      expect(expired.status).toBe(401);
      const header = expired.headers.get('www-authenticate');
      expect(challengeParam(header, 'error')).toBe('invalid_token');
      expect(challengeParam(header, 'error_description')).toMatch(/expired/);
      expect(challengeParam(header, 'resource_metadata')).toBe(rs.resourceMetadataUrl);
    } finally {
      auth.setAccessTokenTtl(3600);
    }
  });

  it('drops a delayed token request whose client aborted, leaving the refresh token unconsumed', async () => {
    const before = { ...auth.counts };
    auth.setTokenDelay(30_000);
    const controller = new AbortController();
    const pending = refresh(as, client, tokens.refresh_token!, rs.url, controller.signal);
    await waitFor(
      () => auth.counts.delayedTokenRequests === before.delayedTokenRequests + 1,
      'the held request',
    );
    controller.abort();
    await expect(pending).rejects.toThrow();
    await waitFor(() => auth.counts.droppedTokenRequests === before.droppedTokenRequests + 1, 'the drop');
    auth.setTokenDelay(0);

    const next = await refresh(as, client, tokens.refresh_token!, rs.url);
    expect(next.refresh_token).not.toBe(tokens.refresh_token);
    tokens = { ...tokens, ...next };
    expect(auth.counts.refreshToken - before.refreshToken).toBe(1);
    expect(auth.counts.tokenErrors).toBe(before.tokenErrors);
  });

  it('processes a delayed token request when the client waits', async () => {
    auth.setTokenDelay(100);
    try {
      const next = await refresh(as, client, tokens.refresh_token!, rs.url);
      tokens = { ...tokens, ...next };
    } finally {
      auth.setTokenDelay(0);
    }
  });

  it('fails every refresh after revokeAllGrants, and re-authorization works', async () => {
    await auth.revokeAllGrants();
    await expectInvalidGrant(refresh(as, client, tokens.refresh_token!, rs.url));
    const stale = await post(rs.url, initializeBody, { authorization: `Bearer ${tokens.access_token}` });
    expect(stale.status).toBe(401);
    ({ tokens } = await authorize(as, client, rs.url));
    const { client: mcp } = await connectMcp(rs.url, tokens.access_token);
    expect(JSON.parse(await whoami(mcp)).scope).toBe('mcp:read mcp:write');
    await mcp.close();
  });

  it('revokes an access token (RFC 7009), which takes the rest of its grant with it', async () => {
    const extra = await refresh(as, client, tokens.refresh_token!, rs.url);
    tokens = { ...tokens, ...extra };
    const revocation = await oauth.revocationRequest(as, client, oauth.None(), extra.access_token, insecure);
    await oauth.processRevocationResponse(revocation);
    const response = await post(rs.url, sessionlessList, { authorization: `Bearer ${extra.access_token}` });
    expect(response.status).toBe(401);
    // oidc-provider revokes every token of the grant along with it, refresh tokens included.
    await expectInvalidGrant(refresh(as, client, tokens.refresh_token!, rs.url));
    ({ tokens } = await authorize(as, client, rs.url));
  });

  it('rejects a token issued for another resource', async () => {
    const other = await startResourceServer({ auth });
    try {
      const response = await post(other.url, initializeBody, {
        authorization: `Bearer ${tokens.access_token}`,
      });
      expect(response.status).toBe(401);
      expect(challengeParam(response.headers.get('www-authenticate'), 'error')).toBe('invalid_token');
    } finally {
      await other.close();
    }
  });

  it('answers 403 insufficient_scope to a tool call without the required scope', async () => {
    const guarded = await startResourceServer({ auth, requiredScope: 'mcp:write' });
    try {
      const { tokens: readOnly } = await authorize(as, client, guarded.url, 'mcp:read');
      expect(readOnly.scope).toBe('mcp:read');
      const { client: mcp, sessionId } = await connectMcp(guarded.url, readOnly.access_token);
      expect((await mcp.listTools()).tools).toHaveLength(2);
      const call = JSON.stringify({
        jsonrpc: '2.0',
        id: 9,
        method: 'tools/call',
        params: { name: 'whoami', arguments: {} },
      });
      const response = await post(guarded.url, call, {
        authorization: `Bearer ${readOnly.access_token}`,
        'mcp-session-id': sessionId()!,
        'mcp-protocol-version': '2025-06-18',
      });
      expect(response.status).toBe(403);
      const header = response.headers.get('www-authenticate');
      expect(challengeParam(header, 'error')).toBe('insufficient_scope');
      expect(challengeParam(header, 'scope')).toBe('mcp:read mcp:write');
      expect(challengeParam(header, 'resource_metadata')).toBe(guarded.resourceMetadataUrl);
      expect(guarded.counts.forbidden).toBe(1);
      expect(guarded.counts.toolCalls).toBe(0);
      await mcp.close();

      const { tokens: readWrite } = await authorize(as, client, guarded.url);
      const { client: upgraded } = await connectMcp(guarded.url, readWrite.access_token);
      expect(JSON.parse(await whoami(upgraded)).scope).toBe('mcp:read mcp:write');
      await upgraded.close();
    } finally {
      await guarded.close();
    }
  });

  it('serves the legacy HTTP+SSE transport behind the same OAuth', async () => {
    const legacy = await startResourceServer({ auth, transport: 'sse' });
    try {
      expect(legacy.url).toMatch(/\/sse$/);
      const anonymous = await fetch(legacy.url, { headers: { accept: 'text/event-stream' } });
      expect(anonymous.status).toBe(401);
      expect(challengeParam(anonymous.headers.get('www-authenticate'), 'resource_metadata')).toBe(
        legacy.resourceMetadataUrl,
      );
      const prm = await oauth.processResourceDiscoveryResponse(
        new URL(legacy.url),
        await oauth.resourceDiscoveryRequest(new URL(legacy.url), insecure),
      );
      expect(prm.resource).toBe(legacy.url);

      const { tokens: sseTokens } = await authorize(as, client, legacy.url);
      const { client: mcp } = await connectMcp(legacy.url, sseTokens.access_token, 'sse');
      expect((await mcp.listTools()).tools.map((t) => t.name)).toContain('echo');
      expect(JSON.parse(await whoami(mcp)).clientId).toBe(client.client_id);
      expect(legacy.counts.sessions).toBe(1);
      await mcp.close();
    } finally {
      await legacy.close();
    }
  });
});

describe('resource server without OAuth', () => {
  it('accepts exactly the static token and serves no protected resource metadata', async () => {
    const rs = await startResourceServer({ staticToken: 'sekret' });
    try {
      const wrong = await post(rs.url, initializeBody, { authorization: 'Bearer nope' });
      expect(wrong.status).toBe(401);
      const header = wrong.headers.get('www-authenticate');
      expect(header).toMatch(/^Bearer/);
      expect(header).not.toContain('resource_metadata');
      expect((await fetch(rs.resourceMetadataUrl)).status).toBe(404);

      const { client } = await connectMcp(rs.url, 'sekret');
      expect(await whoami(client)).toBe('static');
      await client.close();
      expect(rs.counts.unauthorized).toBe(1);
    } finally {
      await rs.close();
    }
  });

  it('serves anonymous callers when no auth is configured (both transports)', async () => {
    for (const transport of ['streamable', 'sse'] as const) {
      const rs = await startResourceServer({ transport });
      try {
        const { client } = await connectMcp(rs.url, undefined, transport);
        expect(await whoami(client)).toBe('anonymous');
        await client.close();
      } finally {
        await rs.close();
      }
    }
  });
});

describe('metadata variants', () => {
  it('serves PRM at the root and a bare Bearer challenge when asked', async () => {
    const auth = await startAuthServer();
    const rs = await startResourceServer({
      auth,
      metadataLocation: 'root',
      resourceMetadataInChallenge: false,
    });
    try {
      const response = await post(rs.url, initializeBody);
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toBe('Bearer');
      expect((await oauth.resourceDiscoveryRequest(new URL(rs.url), insecure)).status).toBe(404);
      const root = await fetch(new URL('/.well-known/oauth-protected-resource', rs.url));
      expect(rs.resourceMetadataUrl).toBe(root.url);
      expect(
        (await oauth.processResourceDiscoveryResponse(new URL(rs.url), root)).authorization_servers,
      ).toEqual([auth.issuer]);
    } finally {
      await rs.close();
      await auth.close();
    }
  });

  it('can hide PKCE support, skip RFC 8414, or serve broken metadata', async () => {
    const noPkce = await startAuthServer({ advertisePkce: false, serveRfc8414: false });
    const broken = await startAuthServer({ tamperMetadata: () => '{"issuer": ' });
    const wrongIssuer = await startAuthServer({
      tamperMetadata: (m) => ({ ...m, issuer: 'https://evil.example' }),
    });
    try {
      const oidc = await oauth.processDiscoveryResponse(
        new URL(noPkce.issuer),
        await oauth.discoveryRequest(new URL(noPkce.issuer), insecure),
      );
      expect(oidc.code_challenge_methods_supported).toBeUndefined();
      const rfc8414 = await oauth.discoveryRequest(new URL(noPkce.issuer), {
        algorithm: 'oauth2',
        ...insecure,
      });
      expect(rfc8414.status).toBe(404);

      await expect(discoverAs(broken.issuer)).rejects.toThrow();
      await expect(discoverAs(wrongIssuer.issuer)).rejects.toThrow(/issuer/);
    } finally {
      await Promise.all([noPkce.close(), broken.close(), wrongIssuer.close()]);
    }
  });
});
