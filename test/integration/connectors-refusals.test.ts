import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir } from '../helpers/bridge.js';
import {
  authorize,
  CHATGPT_REDIRECT,
  connectLikeChatGPT,
  discover,
  exchange,
  initializeWith,
  type PublicDaemon,
  refresh,
  register,
  registerClient,
  startPublicDaemon,
} from '../helpers/connector.js';
import { fakeUpstream } from '../helpers/fake-server.js';
import { raw } from '../helpers/raw-http.js';

describe('public listener refusals', () => {
  const tmp = makeTempDir();
  let pub: PublicDaemon;

  beforeAll(async () => {
    pub = await startPublicDaemon(tmp.dir, [fakeUpstream('notes')]);
  });
  afterAll(async () => {
    await pub?.daemon.close();
    tmp.cleanup();
  });

  it('401 with resource_metadata for no token, a made-up token and a malformed header', async () => {
    const none = await initializeWith(pub.resource);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe(
      `Bearer resource_metadata="${pub.issuer}/.well-known/oauth-protected-resource/mcp"`,
    );
    expect((await none.json()).error.data.code).toBe('BEARER_TOKEN_REQUIRED');
    const madeUp = await initializeWith(pub.resource, 'x'.repeat(43));
    expect(madeUp.status).toBe(401);
    expect(madeUp.headers.get('www-authenticate')).toContain('error="invalid_token"');
    expect((await madeUp.json()).error.data.code).toBe('BEARER_TOKEN_INVALID');
    // The loopback listener's local access token means nothing here.
    expect((await initializeWith(pub.resource, pub.daemon.accessToken)).status).toBe(401);
  });

  it('refuses a redirect URI outside the allow-list at registration', async () => {
    const { as } = await discover(pub.resource);
    for (const uri of [
      'https://evil.example/callback',
      'https://chatgpt.com.evil.example/connector_platform_oauth_redirect',
      'http://192.168.1.5:8080/cb',
    ]) {
      const response = await register(as, { redirect_uris: [uri], token_endpoint_auth_method: 'none' });
      expect(response.status, uri).toBe(400);
      expect((await response.json()).error, uri).toBe('invalid_redirect_uri');
    }
    for (const uri of [
      'http://127.0.0.1:53682/callback',
      'http://localhost:6274/oauth/callback',
      'http://[::1]:9/cb',
      'https://claude.ai/api/mcp/auth_callback',
      'https://chatgpt.com/connector/oauth/abc_123',
    ]) {
      const response = await register(as, { redirect_uris: [uri], token_endpoint_auth_method: 'none' });
      expect(response.status, uri).toBe(201);
    }
  });

  it('refuses an authorization without PKCE or with plain, with error, state and iss on the redirect', async () => {
    const conn = await registerClient(pub.resource);
    for (const params of [
      { code_challenge: undefined, code_challenge_method: undefined },
      { code_challenge: 'a'.repeat(43), code_challenge_method: 'plain' },
    ]) {
      const result = await authorize(conn, { params, state: 'st-1' });
      expect(result.consent).toBeUndefined();
      expect(result.location?.searchParams.get('error')).toBe('invalid_request');
      expect(result.location?.searchParams.get('state')).toBe('st-1');
      expect(result.location?.searchParams.get('iss')).toBe(pub.issuer);
    }
  });

  it('refuses a redirect URI that was not registered exactly (no redirect at all)', async () => {
    const conn = await registerClient(pub.resource);
    const result = await authorize(conn, { params: { redirect_uri: `${CHATGPT_REDIRECT}/x` } });
    expect(result.location).toBeUndefined();
    expect(result.stoppedAt?.status).toBe(400);
  });

  it('refuses a token for another resource at authorize', async () => {
    const conn = await registerClient(pub.resource);
    const result = await authorize(conn, { params: { resource: 'https://other.example/mcp' }, state: 's' });
    expect(result.location?.searchParams.get('error')).toBe('invalid_target');
    expect(result.location?.searchParams.get('iss')).toBe(pub.issuer);
  });

  it('echoes state exactly, so a client detects a wrong one', async () => {
    const conn = await registerClient(pub.resource);
    const result = await authorize(conn, { state: 'expected-state' });
    expect(result.location?.searchParams.get('state')).toBe('expected-state');
    expect(() =>
      oauth.validateAuthResponse(conn.as, conn.client, result.location!, 'another-state'),
    ).toThrow();
  });

  it('issues refresh tokens without offline_access, rotates them, and a reused one kills the grant', async () => {
    const conn = await registerClient(pub.resource);
    const tokens = await exchange(conn, await authorize(conn, { params: { scope: undefined } }));
    expect(tokens.refresh_token).toBeTruthy();
    const first = await oauth.processRefreshTokenResponse(
      conn.as,
      conn.client,
      await refresh(conn, tokens.refresh_token!),
    );
    expect(first.refresh_token).toBeTruthy();
    expect(first.refresh_token).not.toBe(tokens.refresh_token);
    expect((await initializeWith(pub.resource, first.access_token)).status).toBe(200);
    // The spent one again: refused, and the whole grant with it.
    const reuse = await refresh(conn, tokens.refresh_token!);
    expect(reuse.status).toBe(400);
    expect((await reuse.json()).error).toBe('invalid_grant');
    const after = await refresh(conn, first.refresh_token!);
    expect((await after.json()).error).toBe('invalid_grant');
    expect((await initializeWith(pub.resource, first.access_token)).status).toBe(401);
    expect((await initializeWith(pub.resource, tokens.access_token)).status).toBe(401);
  });

  it('a revoked connector loses its tokens and its open session at once', async () => {
    const { conn, tokens } = await connectLikeChatGPT(pub.resource);
    const opened = await initializeWith(pub.resource, tokens.access_token);
    expect(opened.status).toBe(200);
    const session = opened.headers.get('mcp-session-id')!;
    expect(await pub.daemon.public!.revoke(conn.client.client_id)).toBe(true);
    expect((await initializeWith(pub.resource, tokens.access_token)).status).toBe(401);
    // Its registration is gone too.
    expect((await (await refresh(conn, tokens.refresh_token!)).json()).error).toBe('invalid_client');
    expect(pub.daemon.public!.connectors().some((c) => c.clientId === conn.client.client_id)).toBe(false);
    // Another connector's token cannot pick the session up either.
    const other = await connectLikeChatGPT(pub.resource);
    const reuse = await fetch(pub.resource, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        authorization: `Bearer ${other.tokens.access_token}`,
        'mcp-session-id': session,
        'mcp-protocol-version': '2025-06-18',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }),
    });
    expect(reuse.status).toBe(404);
  });

  it('a session belongs to the grant that opened it', async () => {
    const a = await connectLikeChatGPT(pub.resource);
    const b = await connectLikeChatGPT(pub.resource);
    const opened = await initializeWith(pub.resource, a.tokens.access_token);
    const session = opened.headers.get('mcp-session-id')!;
    const list = (token: string) =>
      fetch(pub.resource, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          authorization: `Bearer ${token}`,
          'mcp-session-id': session,
          'mcp-protocol-version': '2025-06-18',
        },
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 3,
          method: 'tools/call',
          params: { name: 'notes__echo', arguments: { text: 'x' } },
        }),
      });
    expect((await list(b.tokens.access_token)).status).toBe(404);
    expect((await list(a.tokens.access_token)).status).toBe(200);
  });
});

describe('public listener: wrong passwords', () => {
  const tmp = makeTempDir();
  let pub: PublicDaemon;

  beforeAll(async () => {
    pub = await startPublicDaemon(tmp.dir, [fakeUpstream('notes')]);
  });
  afterAll(async () => {
    await pub?.daemon.close();
    tmp.cleanup();
  });

  it('five wrong passwords lock the consent page for everyone, with 429 and Retry-After', async () => {
    const conn = await registerClient(pub.resource);
    for (let i = 0; i < 5; i++) {
      const result = await authorize(conn, { password: `wrong password ${i}` });
      expect(result.location).toBeUndefined();
      expect(result.consent?.status).toBe(401);
      expect(result.consent?.html).toContain('Wrong password');
    }
    const right = await authorize(conn);
    expect(right.location).toBeUndefined();
    expect(right.stoppedAt?.status ?? right.consent?.status).toBe(429);
    const retryAfter = Number(
      (right.stoppedAt ?? undefined)?.headers.get('retry-after') ?? right.consent?.retryAfter,
    );
    expect(retryAfter).toBeGreaterThan(800);
    expect(retryAfter).toBeLessThanOrEqual(900);
  });
});

describe('public listener: what a registration may hold, and a public URL with a port', () => {
  const tmp = makeTempDir();
  let pub: PublicDaemon;
  let port: number;

  beforeAll(async () => {
    const { freePort } = await import('../helpers/cli.js');
    port = await freePort();
    // Tailscale Funnel serves on 443, 8443 or 10000: the issuer may carry a port.
    pub = await startPublicDaemon(tmp.dir, [], {
      port,
      public: { url: 'https://box.example.ts.net:8443', port },
    });
  });
  afterAll(async () => {
    await pub?.daemon.close();
    tmp.cleanup();
  });

  // fetch() would send its own Host; node:http sends the tunnel's.
  const post = async (path: string, body: unknown) => {
    const response = await raw(port, {
      path,
      headers: { host: 'box.example.ts.net:8443' },
      body: JSON.stringify(body),
    });
    return {
      status: response.status,
      headers: response.headers,
      json: async () => JSON.parse(response.body),
    };
  };

  it('accepts the Host of an issuer with a port', async () => {
    const response = await post('/mcp', { jsonrpc: '2.0', id: 1, method: 'ping' });
    expect(response.status).toBe(401);
    expect(response.headers['www-authenticate']).toContain(
      'https://box.example.ts.net:8443/.well-known/oauth-protected-resource/mcp',
    );
    const other = await raw(port, { headers: { host: 'other.example:8443' }, body: '{}' });
    expect(other.status).toBe(403);
  });

  it('refuses oversized or malformed registrations with 400, never 500', async () => {
    const base = { token_endpoint_auth_method: 'none', redirect_uris: ['http://127.0.0.1:9/cb'] };
    const cases: [unknown, string][] = [
      [{ ...base, client_name: 'x'.repeat(201) }, 'invalid_client_metadata'],
      [
        { ...base, redirect_uris: Array.from({ length: 11 }, (_, i) => `http://127.0.0.1:${i + 1}/cb`) },
        'invalid_redirect_uri',
      ],
      [{ ...base, redirect_uris: [{ a: 1 }] }, 'invalid_redirect_uri'],
      [{ ...base, redirect_uris: { a: 1 } }, 'invalid_redirect_uri'],
      [{ ...base, logo_uri: `https://x.example/${'a'.repeat(9000)}` }, 'invalid_client_metadata'],
    ];
    for (const [body, error] of cases) {
      const response = await post('/register', body);
      expect(response.status, JSON.stringify(body).slice(0, 80)).toBe(400);
      expect((await response.json()).error).toBe(error);
    }
  });
});
