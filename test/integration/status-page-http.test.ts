// The status page's way in and /metrics, over plain HTTP: what needs the token, what the one-time
// login gives, and what the page session is good for (the page's own routes, never /mcp).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newAccessToken, writeAccessToken } from '../../src/access/access-token.js';
import { findLocalDaemon } from '../../src/access/local-daemon.js';
import { pageLoginUrl } from '../../src/cli/open.js';
import type { Daemon } from '../../src/daemon.js';
import { authHeaders, connectClient, makeTempDir, startTestDaemon } from '../helpers/bridge.js';
import { runCli } from '../helpers/cli.js';
import { fakeUpstream } from '../helpers/fake-server.js';
import { waitFor } from '../helpers/wait.js';

const HTML = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';

describe('the status page over HTTP, and /metrics', () => {
  let daemon: Daemon;
  let base: string;
  let dir: string;
  let cleanup: () => void;

  beforeAll(async () => {
    ({ dir, cleanup } = makeTempDir());
    daemon = await startTestDaemon(dir, [fakeUpstream('alpha')]);
    base = `http://127.0.0.1:${daemon.port}`;
    await waitFor(() => daemon.registry.get('alpha')!.snapshot().state === 'ready', 'alpha ready');
  }, 30_000);

  afterAll(async () => {
    await daemon?.close();
    cleanup?.();
  });

  /** Logs in the way `mcp-bridge open` does: a cookie and the page key. */
  async function login() {
    const local = await findLocalDaemon({ host: '127.0.0.1', port: daemon.port, configDir: dir });
    const url = await pageLoginUrl(local!);
    expect(url).toMatch(new RegExp(`^${base}/login\\?code=[A-Za-z0-9_-]{40,}$`));
    const response = await fetch(url, { redirect: 'manual' });
    expect(response.status).toBe(303);
    const key = /^\/#key=([A-Za-z0-9_-]+)$/.exec(response.headers.get('location') ?? '')?.[1];
    const setCookie = response.headers.get('set-cookie') ?? '';
    expect(setCookie).toMatch(/HttpOnly/);
    expect(setCookie).toMatch(/SameSite=Strict/);
    expect(setCookie).toMatch(/Path=\//);
    expect(setCookie).not.toContain(daemon.accessToken!);
    // Used once: the same link again shows how to get in.
    const again = await fetch(url, { redirect: 'manual' });
    expect(again.status).toBe(401);
    expect(await again.text()).toContain('mcp-bridge open');
    return { url, key: key!, cookie: setCookie.split(';')[0]! };
  }

  it('exports Prometheus text on /metrics, with the token only', async () => {
    expect((await fetch(`${base}/metrics`)).status).toBe(401);
    const response = await fetch(`${base}/metrics`, { headers: authHeaders(daemon) });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    expect(text).toContain('mcp_bridge_upstream_state{upstream="alpha",state="ready"} 1');
    expect(text).toContain('mcp_bridge_upstream_state{upstream="alpha",state="backoff"} 0');
    expect(text).toContain('mcp_bridge_downstream_sessions{era="2025"} 0');
    expect(text).toContain('process_cpu_user_seconds_total');
    // The requests so far were counted (the one being answered is not yet).
    expect(text).toMatch(/mcp_bridge_bytes_total\{direction="in"\} [1-9]/);
    expect(text).toMatch(/mcp_bridge_bytes_total\{direction="out"\} [1-9]/);
  });

  it('counts tool calls by upstream, tool and outcome, with a tool name from the catalog only', async () => {
    const client = await connectClient(daemon.url);
    await client.callTool({ name: 'alpha__echo', arguments: { text: 'm' } });
    await client.callTool({ name: 'alpha__no-such-tool', arguments: {} }).catch(() => {});
    await client.close();
    const text = await (await fetch(`${base}/metrics`, { headers: authHeaders(daemon) })).text();
    expect(text).toMatch(
      /mcp_bridge_tool_calls_total\{upstream="alpha",tool="alpha__echo",outcome="ok"\} [1-9]/,
    );
    expect(text).toMatch(/mcp_bridge_tool_calls_total\{upstream="none",tool="other",outcome="error"\} 1/);
    expect(text).not.toContain('no-such-tool');
    expect(text).toMatch(/mcp_bridge_tool_call_duration_seconds_count\{upstream="alpha"\} [1-9]/);
  });

  it('shows a browser without a login only how to get in; a client still gets the JSON 401', async () => {
    const page = await fetch(`${base}/`, { headers: { accept: HTML } });
    expect(page.status).toBe(401);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
    const text = await page.text();
    expect(text).toContain('mcp-bridge open');
    expect(text).not.toContain('alpha');
    expect(text).not.toContain('<script');
    const api = await fetch(`${base}/`, { headers: { accept: 'application/json' } });
    expect(api.status).toBe(401);
    expect(((await api.json()) as { error: { data: { code: string } } }).error.data.code).toBe(
      'ACCESS_TOKEN_REQUIRED',
    );
    for (const path of ['/page/data', '/page/events'])
      expect((await fetch(`${base}${path}`)).status).toBe(401);
  });

  it('`mcp-bridge open --no-open` prints a one-time link to the page (the built CLI)', async () => {
    const env = {
      PATH: process.env.PATH,
      HOME: dir,
      MCP_BRIDGE_CONFIG_DIR: dir,
      MCP_BRIDGE_PORT: String(daemon.port),
    };
    const result = await runCli(['open', '--no-open'], env);
    expect(result.code, result.stderr).toBe(0);
    const link = /http:\/\/127\.0\.0\.1:\d+\/login\?code=\S+/.exec(result.stdout)?.[0];
    expect(link).toBeDefined();
    expect(result.stdout).not.toContain(daemon.accessToken!);
    expect((await fetch(link!, { redirect: 'manual' })).status).toBe(303);
  });

  it('serves docs/errors.md with an anchor per code, which the page links each error to', async () => {
    const response = await fetch(`${base}/docs/errors`);
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(text).toContain('<section class="entry" id="UPSTREAM_CLOSED">');
    expect(text).toContain('id="PAGE_REQUEST_FORBIDDEN"');
    expect(text).toContain('HTTP 403 · JSON-RPC -32600 · exit code 1');
    expect(text).not.toContain('<script');
  });

  it('hands out login codes for the token only, and never to a web page', async () => {
    expect((await fetch(`${base}/login/code`, { method: 'POST' })).status).toBe(401);
    const fromPage = await fetch(`${base}/login/code`, {
      method: 'POST',
      headers: { ...authHeaders(daemon), origin: base },
    });
    expect(fromPage.status).toBe(403);
    expect((await fetch(`${base}/login?code=guessed`)).status).toBe(401);
  });

  it('a page session opens the page and its data, from the page only, and never /mcp', async () => {
    const { cookie, key } = await login();
    const shell = await fetch(`${base}/`, { headers: { cookie, accept: HTML } });
    expect(shell.status).toBe(200);
    expect(shell.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(await shell.text()).toContain('/page/status.js');

    const own = { cookie, 'x-page-key': key };
    const data = await fetch(`${base}/page/data`, { headers: own });
    expect(data.status).toBe(200);
    const body = await data.text();
    expect(body).toContain('"name":"alpha"');
    expect(body).not.toContain(daemon.accessToken!);

    for (const headers of [
      { cookie },
      { ...own, origin: 'http://127.0.0.1:3000' },
      { ...own, 'sec-fetch-site': 'same-site' },
    ]) {
      const refused = await fetch(`${base}/page/data`, { headers });
      expect(refused.status).toBe(403);
      expect(((await refused.json()) as { error: { data: { code: string } } }).error.data.code).toBe(
        'PAGE_REQUEST_FORBIDDEN',
      );
    }
    const mcp = await fetch(`${base}/mcp`, {
      method: 'POST',
      headers: { ...own, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
    });
    expect(mcp.status).toBe(401);
    for (const path of ['/status', '/metrics'])
      expect((await fetch(`${base}${path}`, { headers: own })).status).toBe(401);
  });

  it('reconnects an upstream on a same-origin POST with the page key; counted in /metrics', async () => {
    const { cookie, key } = await login();
    const before = daemon.registry.get('alpha')!.snapshot().restarts;
    const post = (headers: Record<string, string>) =>
      fetch(`${base}/page/actions/reconnect`, {
        method: 'POST',
        headers: { cookie, 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ upstream: 'alpha' }),
      });
    expect((await post({ 'x-page-key': key })).status).toBe(403);
    expect((await post({ 'x-page-key': key, origin: 'http://localhost:3000' })).status).toBe(403);
    expect((await post({ origin: base })).status).toBe(403);
    expect(daemon.registry.get('alpha')!.snapshot().restarts).toBe(before);
    const done = await post({ 'x-page-key': key, origin: base });
    expect(await done.json()).toEqual({ upstream: 'alpha', reconnecting: true });
    await waitFor(
      () =>
        daemon.registry.get('alpha')!.snapshot().restarts === before + 1 &&
        daemon.registry.get('alpha')!.snapshot().state === 'ready',
      'alpha reconnected',
    );
    const metrics = await (await fetch(`${base}/metrics`, { headers: authHeaders(daemon) })).text();
    expect(metrics).toMatch(/mcp_bridge_upstream_reconnects_total\{upstream="alpha"\} [1-9]/);
    const unknown = await fetch(`${base}/page/actions/reconnect`, {
      method: 'POST',
      headers: {
        cookie,
        'x-page-key': key,
        'sec-fetch-site': 'same-origin',
        'content-type': 'application/json',
      },
      body: JSON.stringify({ upstream: 'nope' }),
    });
    expect(unknown.status).toBe(404);
  });

  it('ends every page session when the access token is rotated', async () => {
    const { cookie, key } = await login();
    await writeAccessToken(dir, newAccessToken());
    await waitFor(
      async () =>
        (await fetch(`${base}/page/data`, { headers: { cookie, 'x-page-key': key } })).status === 401,
      'the page session to end',
    );
  });
});
