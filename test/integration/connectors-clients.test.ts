import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  Client,
  type OAuthClientProvider,
  StreamableHTTPClientTransport,
  UnauthorizedError,
} from '@modelcontextprotocol/client';
import * as oauth from 'oauth4webapi';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { makeTempDir } from '../helpers/bridge.js';
import {
  authorize,
  BrowserLike,
  type Connection,
  connectLikeChatGPT,
  discover,
  exchange,
  refresh,
  startPublicDaemon,
} from '../helpers/connector.js';
import { FAKE_TOOL_COUNT, fakeUpstream } from '../helpers/fake-server.js';
import { startResourceServer } from '../helpers/mcp-resource-server.js';
import { httpUpstream } from '../helpers/remote.js';
import { waitFor } from '../helpers/wait.js';

async function toolsWith(url: string, token: string, era: '2025' | '2026-07-28') {
  const client = new Client(
    { name: `era-${era}`, version: '1' },
    era === '2025' ? {} : { versionNegotiation: { mode: { pin: era } } },
  );
  await client.connect(
    new StreamableHTTPClientTransport(new URL(url), {
      requestInit: { headers: { authorization: `Bearer ${token}` } },
    }),
  );
  try {
    const { tools } = await client.listTools();
    const called = await client.callTool({ name: 'notes__echo', arguments: { text: `hello ${era}` } });
    return { tools, called };
  } finally {
    await client.close();
  }
}

describe('public listener with real clients', () => {
  const tmp = makeTempDir();
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
    close = undefined;
  });
  afterAll(() => tmp.cleanup());

  it('serves both protocol eras to a bearer token', async () => {
    const pub = await startPublicDaemon(tmp.dir, [fakeUpstream('notes')]);
    close = () => pub.daemon.close();
    await waitFor(() => pub.daemon.registry.get('notes')!.snapshot().state === 'ready', 'notes');
    const { tokens } = await connectLikeChatGPT(pub.resource);
    for (const era of ['2025', '2026-07-28'] as const) {
      const { tools, called } = await toolsWith(pub.resource, tokens.access_token, era);
      expect(tools, era).toHaveLength(FAKE_TOOL_COUNT);
      expect(JSON.stringify(called.content), era).toContain(`hello ${era}`);
    }
  });

  it("the SDK v2 client's own OAuth (dynamic registration, loopback redirect) gets in", async () => {
    const pub = await startPublicDaemon(tmp.dir, [fakeUpstream('notes')]);
    close = () => pub.daemon.close();
    await waitFor(() => pub.daemon.registry.get('notes')!.snapshot().state === 'ready', 'notes');
    const redirectUrl = 'http://127.0.0.1:33418/callback';
    const stored: Record<string, unknown> = {};
    let authorizationUrl: URL | undefined;
    const provider: OAuthClientProvider = {
      get redirectUrl() {
        return redirectUrl;
      },
      get clientMetadata() {
        return {
          client_name: 'SDK test client',
          redirect_uris: [redirectUrl],
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
          token_endpoint_auth_method: 'none',
        };
      },
      clientInformation: () => stored.client as never,
      saveClientInformation: (info) => {
        stored.client = info;
      },
      tokens: () => stored.tokens as never,
      saveTokens: (tokens) => {
        stored.tokens = tokens;
      },
      redirectToAuthorization: (url) => {
        authorizationUrl = url;
      },
      saveCodeVerifier: (verifier) => {
        stored.verifier = verifier;
      },
      codeVerifier: () => String(stored.verifier),
    };
    const first = new Client({ name: 'sdk-oauth', version: '1' });
    const transport = new StreamableHTTPClientTransport(new URL(pub.resource), { authProvider: provider });
    const refused = await first.connect(transport).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(UnauthorizedError);
    expect(authorizationUrl?.origin).toBe(pub.issuer);
    expect(authorizationUrl?.searchParams.get('resource')).toBe(pub.resource);
    // The owner's browser: consent page, password, redirects back to the loopback URL.
    const browser = new BrowserLike();
    let next = authorizationUrl!.href;
    let landed: URL | undefined;
    for (let hop = 0; hop < 10 && !landed; hop++) {
      const response = await browser.fetch(next);
      const location = response.headers.get('location');
      if (location) {
        const target = new URL(location, next);
        if (target.href.startsWith(redirectUrl)) landed = target;
        else next = target.href;
        continue;
      }
      const csrf = /name="csrf" value="([^"]+)"/.exec(await response.text())?.[1];
      const posted = await browser.fetch(next, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: pub.issuer },
        body: new URLSearchParams({
          csrf: csrf!,
          password: 'correct horse battery staple',
          decision: 'allow',
        }),
      });
      next = new URL(posted.headers.get('location')!, next).href;
    }
    expect(landed?.searchParams.get('iss')).toBe(pub.issuer);
    await transport.finishAuth(landed!.searchParams);
    expect((stored.tokens as { refresh_token?: string }).refresh_token).toBeTruthy();
    const client = new Client({ name: 'sdk-oauth', version: '1' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(pub.resource), { authProvider: provider }),
    );
    expect((await client.listTools()).tools).toHaveLength(FAKE_TOOL_COUNT);
    await client.close();
    expect(pub.daemon.public!.connectors().map((c) => c.clientName)).toContain('SDK test client');
  });

  it('a Client ID Metadata Document client (client_id is its URL) connects without registering', async () => {
    const clientId = 'https://cimd.example/mcp-client.json';
    const redirectUri = 'http://127.0.0.1:45454/cb';
    const documents: Server = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=60' });
      res.end(
        JSON.stringify({
          client_id: clientId,
          client_name: 'CIMD client',
          redirect_uris: [redirectUri],
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
          token_endpoint_auth_method: 'none',
          path: req.url,
        }),
      );
    });
    await new Promise<void>((resolve) => documents.listen(0, '127.0.0.1', resolve));
    const port = (documents.address() as AddressInfo).port;
    const fetched: string[] = [];
    // Only the transport is replaced (the real thing needs https on a public address):
    // oidc-provider still fetches, validates and caches the document itself.
    const cimdFetch = ((url: string | URL, init?: RequestInit) => {
      fetched.push(String(url));
      const { dispatcher: _ssrf, ...rest } = (init ?? {}) as RequestInit & { dispatcher?: unknown };
      return fetch(String(url).replace('https://cimd.example', `http://127.0.0.1:${port}`), rest);
    }) as typeof fetch;
    const pub = await startPublicDaemon(tmp.dir, [fakeUpstream('notes')], { cimdFetch });
    close = async () => {
      await pub.daemon.close();
      documents.close();
    };
    const { as } = await discover(pub.resource);
    const conn: Connection = {
      as,
      client: { client_id: clientId, token_endpoint_auth_method: 'none' },
      clientAuth: oauth.None(),
      redirectUri,
      resource: pub.resource,
    };
    const result = await authorize(conn);
    expect(result.consent?.status).toBe(303);
    const tokens = await exchange(conn, result);
    expect(fetched).toContain(clientId);
    const { tools } = await toolsWith(pub.resource, tokens.access_token, '2025');
    expect(tools.length).toBeGreaterThan(0);
    // A document whose redirect URI is not allowed is refused like a registration would be.
    const evil: Connection = {
      ...conn,
      client: { client_id: 'https://cimd.example/evil.json' },
      redirectUri: 'https://evil.example/cb',
    };
    const refused = await authorize(evil);
    expect(refused.location).toBeUndefined();
    expect(refused.consent).toBeUndefined();
  });

  it('clients, grants and tokens survive a restart between token issue and refresh', async () => {
    const first = await startPublicDaemon(tmp.dir, [fakeUpstream('notes')]);
    const port = Number(new URL(first.issuer).port);
    const { conn, tokens } = await connectLikeChatGPT(first.resource);
    await first.daemon.close();
    const again = await startPublicDaemon(tmp.dir, [fakeUpstream('notes')], { port });
    close = () => again.daemon.close();
    await waitFor(() => again.daemon.registry.get('notes')!.snapshot().state === 'ready', 'notes');
    // The access token from before the restart still works, and so does the refresh token.
    expect((await toolsWith(again.resource, tokens.access_token, '2025')).tools).toHaveLength(
      FAKE_TOOL_COUNT,
    );
    const refreshed = await oauth.processRefreshTokenResponse(
      conn.as,
      conn.client,
      await refresh(conn, tokens.refresh_token!),
    );
    expect((await toolsWith(again.resource, refreshed.access_token, '2026-07-28')).tools).toHaveLength(
      FAKE_TOOL_COUNT,
    );
    expect(
      again.daemon.public!.connectors().find((c) => c.clientId === conn.client.client_id)?.lastUsedAt,
    ).toBeGreaterThan(0);
  });

  it('a token issued for another resource (public.url changed) gets 401', async () => {
    const first = await startPublicDaemon(tmp.dir, [fakeUpstream('notes')]);
    const { tokens } = await connectLikeChatGPT(first.resource);
    await first.daemon.close();
    const moved = await startPublicDaemon(tmp.dir, [fakeUpstream('notes')]);
    close = () => moved.daemon.close();
    const response = await fetch(moved.resource, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${tokens.access_token}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
    });
    expect(response.status).toBe(401);
    expect((await response.json()).error.message).toContain('another resource');
  });

  it("never forwards the connector's token to an upstream", async () => {
    const remote = await startResourceServer();
    const pub = await startPublicDaemon(tmp.dir, [httpUpstream('remote', remote.url)]);
    close = async () => {
      await pub.daemon.close();
      await remote.close();
    };
    await waitFor(() => pub.daemon.registry.get('remote')!.snapshot().state === 'ready', 'remote');
    const { tokens } = await connectLikeChatGPT(pub.resource);
    const client = new Client({ name: 'c', version: '1' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(pub.resource), {
        requestInit: { headers: { authorization: `Bearer ${tokens.access_token}` } },
      }),
    );
    await client.callTool({ name: 'remote__echo', arguments: { text: 'x' } });
    await client.close();
    expect(remote.counts.toolCalls).toBe(1);
    expect(remote.authorizations.length).toBeGreaterThan(0);
    expect(remote.authorizations.every((a) => a === undefined || !a.includes(tokens.access_token))).toBe(
      true,
    );
  });
});
