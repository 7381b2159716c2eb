// The status page's "Log in" for an OAuth upstream, and what the page and /metrics say of its token.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findLocalDaemon } from '../../src/access/local-daemon.js';
import { pageLoginUrl } from '../../src/cli/open.js';
import type { Daemon } from '../../src/daemon.js';
import type { PageData } from '../../src/server/page/page-data.js';
import { authHeaders, makeTempDir, startTestDaemon } from '../helpers/bridge.js';
import { type ResourceServer, startResourceServer } from '../helpers/mcp-resource-server.js';
import { type AuthServer, completeConsent, startAuthServer } from '../helpers/oauth-server.js';
import { httpUpstream } from '../helpers/remote.js';
import { waitFor } from '../helpers/wait.js';

describe('the status page and an OAuth upstream', () => {
  let as: AuthServer;
  let rs: ResourceServer;
  let daemon: Daemon;
  let base: string;
  let cleanup: () => void;
  let dir: string;
  let headers: Record<string, string>;

  beforeAll(async () => {
    as = await startAuthServer({ accessTokenTtlSec: 3600 });
    rs = await startResourceServer({ auth: as });
    const temp = makeTempDir();
    cleanup = temp.cleanup;
    dir = temp.dir;
    daemon = await startTestDaemon(dir, [httpUpstream('notes', rs.url)]);
    base = `http://127.0.0.1:${daemon.port}`;
    await waitFor(() => daemon.registry.get('notes')!.snapshot().state === 'needs_auth', 'needs_auth');
    const local = await findLocalDaemon({ host: '127.0.0.1', port: daemon.port, configDir: dir });
    const login = await fetch(await pageLoginUrl(local!), { redirect: 'manual' });
    const key = /#key=(.+)$/.exec(login.headers.get('location') ?? '')![1]!;
    headers = { cookie: login.headers.get('set-cookie')!.split(';')[0]!, 'x-page-key': key, origin: base };
  }, 30_000);

  afterAll(async () => {
    await daemon?.close();
    await rs?.close();
    await as?.close();
    cleanup?.();
  });

  const data = async () => (await (await fetch(`${base}/page/data`, { headers })).json()) as PageData;

  it('says how to log in, starts the login from the page, then shows the token times (never a token)', async () => {
    const before = (await data()).upstreams[0]!;
    expect(before.state).toBe('needs_auth');
    expect(before.fix).toMatchObject({ command: 'npm run auth -- notes' });
    expect(before.lastError?.code).toBe('NEEDS_AUTH');

    const started = await fetch(`${base}/page/actions/login`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify({ upstream: 'notes' }),
    });
    expect(started.status).toBe(200);
    const { authorizationUrl } = (await started.json()) as { authorizationUrl: string };
    expect(authorizationUrl.startsWith(as.issuer)).toBe(true);
    expect((await fetch(await completeConsent(authorizationUrl))).status).toBe(200);
    await waitFor(() => daemon.registry.get('notes')!.snapshot().state === 'ready', 'ready');

    const after = await data();
    const notes = after.upstreams[0]!;
    expect(notes.fix).toBeNull();
    expect(notes.oauth).toMatchObject({ loggedIn: true, refreshable: true, lastRefresh: null });
    expect(Date.parse(notes.oauth!.expiresAt!)).toBeGreaterThan(Date.now() + 3_000_000);
    const metrics = await (await fetch(`${base}/metrics`, { headers: authHeaders(daemon) })).text();
    expect(metrics).toMatch(/mcp_bridge_oauth_token_expiry_seconds\{upstream="notes"\} 3[0-9]{3}/);

    const file = JSON.parse(readFileSync(join(dir, 'oauth-state.json'), 'utf8')) as {
      tokens: Record<string, { accessToken: string; refreshToken: string }>;
    };
    const { accessToken, refreshToken } = file.tokens.notes!;
    for (const text of [JSON.stringify(after), metrics]) {
      expect(text).not.toContain(accessToken);
      expect(text).not.toContain(refreshToken);
    }
  });

  it('answers a login for an upstream that has none with why not', async () => {
    const response = await fetch(`${base}/page/actions/login`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify({ upstream: 'nope' }),
    });
    expect(response.status).toBe(404);
    expect(((await response.json()) as { error: string }).error).toContain('no upstream named "nope"');
  });
});
