import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/client';
import { afterEach, describe, expect, it } from 'vitest';
import type { Daemon } from '../../src/daemon.js';
import type { Status } from '../../src/server/status.js';
import type { UpstreamState } from '../../src/upstream/state.js';
import { authHeaders } from '../helpers/access.js';
import { connectClient, makeTempDir, startTestDaemon } from '../helpers/bridge.js';
import { type ResourceServer, startResourceServer } from '../helpers/mcp-resource-server.js';
import { type AuthServer, completeConsent, startAuthServer } from '../helpers/oauth-server.js';
import { beginLogin, daemonBase, httpUpstream, loginThroughDaemon } from '../helpers/remote.js';
import { waitFor } from '../helpers/wait.js';

interface TokenFile {
  tokens: Record<
    string,
    { accessToken: string; refreshToken?: string; expiresAt?: number; resource: string }
  >;
}

describe('remote upstreams with OAuth', () => {
  let daemon: Daemon | undefined;
  const clients: Client[] = [];
  const closers: (() => Promise<void> | void)[] = [];

  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    await daemon?.close();
    daemon = undefined;
    for (const close of closers.splice(0).reverse()) await close();
  });

  function tempDir(): string {
    const temp = makeTempDir();
    closers.push(temp.cleanup);
    return temp.dir;
  }

  async function servers(options: { ttl?: number } = {}): Promise<{ as: AuthServer; rs: ResourceServer }> {
    const as = await startAuthServer({ accessTokenTtlSec: options.ttl ?? 3600 });
    closers.push(() => as.close());
    const rs = await startResourceServer({ auth: as });
    closers.push(() => rs.close());
    return { as, rs };
  }

  async function state(name: string, wanted: UpstreamState): Promise<void> {
    await waitFor(() => daemon?.registry.get(name)?.snapshot().state === wanted, `${name} to be ${wanted}`);
  }

  async function client(): Promise<Client> {
    const c = await connectClient(daemon!.url);
    clients.push(c);
    return c;
  }

  function tokenFile(dir: string): TokenFile {
    return JSON.parse(readFileSync(join(dir, 'oauth-state.json'), 'utf8')) as TokenFile;
  }

  async function whoami(c: Client): Promise<string> {
    const result = await c.callTool({ name: 'notes__whoami', arguments: {} });
    expect(result.isError).toBeFalsy();
    return (result.content as { text: string }[])[0]!.text;
  }

  /** A ready, logged-in `notes` upstream in a fresh daemon. */
  async function loggedIn(options: { ttl?: number } = {}) {
    const { as, rs } = await servers(options);
    const dir = tempDir();
    daemon = await startTestDaemon(dir, [httpUpstream('notes', rs.url)]);
    await state('notes', 'needs_auth');
    const login = await loginThroughDaemon(daemonBase(daemon), 'notes');
    expect(login.status).toBe(200);
    await state('notes', 'ready');
    return { as, rs, dir };
  }

  it('starts as needs_auth with the command to run, then logs in through the daemon and becomes ready without a restart', async () => {
    const { rs } = await servers();
    const dir = tempDir();
    daemon = await startTestDaemon(dir, [httpUpstream('notes', rs.url)]);
    await state('notes', 'needs_auth');

    const status = (await (
      await fetch(`${daemonBase(daemon)}/status`, { headers: authHeaders(daemon) })
    ).json()) as Status;
    const notes = status.upstreams.find((u) => u.name === 'notes')!;
    expect(notes.action).toBe('npm run auth -- notes');
    expect(notes.lastError?.message).toContain('npm run auth -- notes');

    const login = await loginThroughDaemon(daemonBase(daemon), 'notes');
    expect(login.status).toBe(200);
    expect(login.page).toContain('is now logged in to &quot;notes&quot;');
    await state('notes', 'ready');

    const c = await client();
    expect(JSON.parse(await whoami(c)).scope).toContain('mcp:read');
    const file = tokenFile(dir);
    expect(file.tokens.notes?.resource).toBe(rs.url);
    expect(file.tokens.notes?.refreshToken).toBeTruthy();
    expect(statSync(join(dir, 'oauth-state.json')).mode & 0o777).toBe(0o600);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
  });

  it('refreshes a short-lived access token ahead of expiry, with no failed call and no 401', async () => {
    const { as, rs } = await loggedIn({ ttl: 2 });
    const c = await client();
    const unauthorized = rs.counts.unauthorized;
    const deadline = Date.now() + 5_000;
    let calls = 0;
    while (Date.now() < deadline) {
      await whoami(c);
      calls++;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(calls).toBeGreaterThan(10);
    expect(as.counts.refreshToken).toBeGreaterThanOrEqual(2);
    expect(rs.counts.unauthorized).toBe(unauthorized);
  });

  it('never refreshes in a loop, whether tokens live for 30 days or for one second', async () => {
    const { as } = await loggedIn({ ttl: 30 * 24 * 3600 });
    await whoami(await client());
    await new Promise((r) => setTimeout(r, 1000));
    expect(as.counts.refreshToken).toBe(0);

    as.setAccessTokenTtl(1);
    await daemon!.oauth.refresh('notes', undefined).catch(() => {});
    const before = as.counts.refreshToken;
    await new Promise((r) => setTimeout(r, 2000));
    // At most one refresh per half lifetime (0.5 s), not one per event-loop turn.
    expect(as.counts.refreshToken - before).toBeLessThanOrEqual(6);
  });

  it('exchanges the code once when the browser delivers the callback twice at the same time', async () => {
    const { as, rs } = await servers();
    daemon = await startTestDaemon(tempDir(), [httpUpstream('notes', rs.url)]);
    await state('notes', 'needs_auth');
    const { authorizationUrl } = await beginLogin(daemonBase(daemon), 'notes');
    const callback = await completeConsent(authorizationUrl);
    const statuses = (await Promise.all([fetch(callback), fetch(callback)])).map((r) => r.status).sort();
    expect(statuses).toEqual([200, 400]);
    expect(as.counts.authorizationCode).toBe(1);
    await state('notes', 'ready');
  });

  it('survives 20 rapid refresh-token rotations (reuse would revoke the grant)', async () => {
    const { as, dir } = await loggedIn();
    const seen = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const before = tokenFile(dir).tokens.notes!;
      seen.add(before.refreshToken!);
      await daemon!.oauth.refresh('notes', before.accessToken);
    }
    const after = tokenFile(dir).tokens.notes!;
    seen.add(after.refreshToken!);
    expect(seen.size).toBe(21);
    expect(as.counts.refreshToken).toBe(20);
    expect(as.counts.invalidGrant).toBe(0);
    await whoami(await client());
  });

  it('spends exactly one refresh request when ten concurrent calls meet a rejected token', async () => {
    const { as, rs, dir } = await loggedIn();
    const c = await client();
    await whoami(c);
    // The server stops accepting the current access token, as at its expiry.
    const token = await as.provider.AccessToken.find(tokenFile(dir).tokens.notes!.accessToken);
    await token!.destroy();
    const refreshes = as.counts.refreshToken;
    const results = await Promise.all(Array.from({ length: 10 }, () => whoami(c)));
    expect(results).toHaveLength(10);
    expect(as.counts.refreshToken - refreshes).toBe(1);
    expect(rs.counts.unauthorized).toBeGreaterThan(0);
  });

  it('goes to needs_auth once when the grant is revoked, without a refresh loop', async () => {
    const { as, dir } = await loggedIn();
    const c = await client();
    await as.revokeAllGrants();
    const refreshes = as.counts.refreshToken;
    const result = await c.callTool({ name: 'notes__whoami', arguments: {} }).catch((e: Error) => e);
    expect(String(result instanceof Error ? result.message : JSON.stringify(result))).toContain(
      'npm run auth -- notes',
    );
    await state('notes', 'needs_auth');
    await new Promise((r) => setTimeout(r, 1500));
    expect(as.counts.refreshToken - refreshes).toBe(1);
    expect(daemon!.registry.get('notes')!.snapshot().state).toBe('needs_auth');
    expect(tokenFile(dir).tokens.notes).toBeUndefined();
    // And a new login brings it back.
    expect((await loginThroughDaemon(daemonBase(daemon!), 'notes')).status).toBe(200);
    await state('notes', 'ready');
    await whoami(c);
  });

  it('fails a call that needs more scope with the scope and the command, and the next login asks for it', async () => {
    const as = await startAuthServer({ scopes: ['mcp:read', 'mcp:admin'] });
    closers.push(() => as.close());
    const rs = await startResourceServer({ auth: as, requiredScope: 'mcp:admin' });
    closers.push(() => rs.close());
    daemon = await startTestDaemon(tempDir(), [
      httpUpstream('notes', rs.url, { oauth: { scopes: ['mcp:read'] } }),
    ]);
    await state('notes', 'needs_auth');
    const base = daemonBase(daemon);
    const first = await beginLogin(base, 'notes');
    expect(new URL(first.authorizationUrl).searchParams.get('scope')).toBe('mcp:read');
    expect((await fetch(await completeConsent(first.authorizationUrl))).status).toBe(200);
    await state('notes', 'ready');

    const c = await client();
    const denied = await c.callTool({ name: 'notes__whoami', arguments: {} }).catch((e: Error) => e);
    expect(denied).toBeInstanceOf(Error);
    expect((denied as Error).message).toMatch(
      /needs more permission \(scope "[^"]*mcp:admin[^"]*"\).*npm run auth -- notes/,
    );

    const second = await beginLogin(base, 'notes');
    expect(new URL(second.authorizationUrl).searchParams.get('scope')?.split(' ').sort()).toEqual([
      'mcp:admin',
      'mcp:read',
    ]);
    expect((await fetch(await completeConsent(second.authorizationUrl))).status).toBe(200);
    await waitFor(
      async () => !(await c.callTool({ name: 'notes__whoami', arguments: {} })).isError,
      'the call',
    );
    expect(JSON.parse(await whoami(c)).scope).toContain('mcp:admin');
  });

  it('accepts a static bearer header, and says so clearly when the server rejects it', async () => {
    const rs = await startResourceServer({ staticToken: 's3cret' });
    closers.push(() => rs.close());
    daemon = await startTestDaemon(tempDir(), [
      httpUpstream('notes', rs.url, { headers: { Authorization: 'Bearer s3cret' } }),
      httpUpstream('wrong', rs.url, { headers: { Authorization: 'Bearer nope' } }),
    ]);
    await state('notes', 'ready');
    expect(await whoami(await client())).toBe('static');
    await state('wrong', 'failed');
    const wrong = daemon.registry.get('wrong')!.snapshot();
    expect(wrong.lastError?.code).toBe('AUTH_REJECTED');
    expect(wrong.lastError?.message).toContain('rejected the configured Authorization header');
  });

  it('falls back to the legacy HTTP+SSE transport for a server that only speaks it', async () => {
    const rs = await startResourceServer({ transport: 'sse' });
    closers.push(() => rs.close());
    daemon = await startTestDaemon(tempDir(), [httpUpstream('notes', rs.url)]);
    await state('notes', 'ready');
    expect(daemon.registry.get('notes')!.snapshot().transport).toBe('sse');
    expect(await whoami(await client())).toBe('anonymous');
  });

  it('recovers from an upstream restart (404 for its session) without a user-visible error', async () => {
    const { rs } = await loggedIn();
    const c = await client();
    await whoami(c);
    const sessions = rs.counts.sessions;
    rs.expireSessions();
    expect(JSON.parse(await whoami(c)).scope).toBeTruthy();
    expect(rs.counts.sessions).toBe(sessions + 1);
    await state('notes', 'ready');
  });

  describe('refuses unsafe or broken servers with clear errors', () => {
    async function loginError(as: AuthServer): Promise<string> {
      const rs = await startResourceServer({ auth: as });
      closers.push(() => rs.close());
      daemon = await startTestDaemon(tempDir(), [httpUpstream('notes', rs.url)]);
      const response = await fetch(`${daemonBase(daemon)}/oauth/login`, {
        method: 'POST',
        headers: { ...authHeaders(daemon), 'content-type': 'application/json' },
        body: JSON.stringify({ upstream: 'notes' }),
      });
      expect(response.status).toBe(502);
      return ((await response.json()) as { error: string }).error;
    }

    it('an authorization server without PKCE S256', async () => {
      const as = await startAuthServer({ advertisePkce: false });
      closers.push(() => as.close());
      expect(await loginError(as)).toMatch(/does not list S256.*refusing to log in without PKCE/);
    });

    it('metadata whose issuer does not match, and metadata that is not JSON', async () => {
      const evil = await startAuthServer({
        tamperMetadata: (m) => ({ ...m, issuer: 'https://evil.example' }),
      });
      closers.push(() => evil.close());
      expect(await loginError(evil)).toMatch(/authorization server metadata at .* is invalid/);
      await daemon?.close();
      const garbage = await startAuthServer({ tamperMetadata: () => '<html>oops</html>' });
      closers.push(() => garbage.close());
      expect(await loginError(garbage)).toMatch(/is invalid/);
    });

    it('a callback with the wrong iss or the wrong state', async () => {
      const { rs } = await servers();
      daemon = await startTestDaemon(tempDir(), [httpUpstream('notes', rs.url)]);
      const base = daemonBase(daemon);

      const first = await beginLogin(base, 'notes');
      const forged = new URL(await completeConsent(first.authorizationUrl));
      forged.searchParams.set('iss', 'https://evil.example');
      const wrongIss = await fetch(forged);
      expect(wrongIss.status).toBe(400);
      expect(await wrongIss.text()).toContain('mix-up');
      const status = (await (
        await fetch(`${base}/oauth/login/${first.state}`, { headers: authHeaders(base) })
      ).json()) as { status: string };
      expect(status.status).toBe('failed');

      const second = await beginLogin(base, 'notes');
      const stale = new URL(await completeConsent(second.authorizationUrl));
      stale.searchParams.set('state', 'not-the-state');
      const wrongState = await fetch(stale);
      expect(wrongState.status).toBe(400);
      expect(await wrongState.text()).toContain('does not belong to a login in progress');
      expect(daemon.registry.get('notes')!.snapshot().state).toBe('needs_auth');
    });

    it('a login request from a web page (any Origin header)', async () => {
      const { rs } = await servers();
      daemon = await startTestDaemon(tempDir(), [httpUpstream('notes', rs.url)]);
      const response = await fetch(`${daemonBase(daemon)}/oauth/login`, {
        method: 'POST',
        headers: { ...authHeaders(daemon), 'content-type': 'application/json', origin: 'https://claude.ai' },
        body: JSON.stringify({ upstream: 'notes' }),
      });
      expect(response.status).toBe(403);
    });
  });
});
