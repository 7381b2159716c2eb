import { createServer, type Server } from 'node:http';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Daemon } from '../../src/daemon.js';
import { authHeaders, makeTempDir, startTestDaemon } from '../helpers/bridge.js';
import { launchChromium } from '../helpers/browser.js';
import { fakeUpstream } from '../helpers/fake-server.js';
import { waitFor } from '../helpers/wait.js';

interface Attempt {
  readonly status?: number;
  readonly body?: string;
  /** The browser refused to let the page see the answer (CORS) or could not send it. */
  readonly blocked?: string;
}

/**
 * What a hostile page does: it knows the bridge's well-known address and tries to drive it. It is
 * served by "any other program on a loopback port" (a dev server, a malicious package's server).
 */
const ATTACK_PAGE = `<!doctype html><meta charset="utf-8"><title>other page</title><script>
async function attempt(url, init) {
  try {
    const r = await fetch(url, init);
    return { status: r.status, body: await r.text() };
  } catch (e) {
    return { blocked: String(e) };
  }
}
window.run = async (bridge, token, version) => {
  const auth = token ? { authorization: 'Bearer ' + token } : {};
  const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...auth };
  const init = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize',
    params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'page', version: '1' } } });
  const list = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list', params: {
    _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientInfo': { name: 'page', version: '1' }, 'io.modelcontextprotocol/clientCapabilities': {} } } });
  return {
    initialize: await attempt(bridge + '/mcp', { method: 'POST', headers, body: init }),
    status: await attempt(bridge + '/status', { headers: auth }),
    modern: await attempt(bridge + '/mcp', { method: 'POST',
      headers: { ...headers, 'mcp-protocol-version': version, 'mcp-method': 'tools/list' }, body: list }),
  };
};
</script>`;

describe('a web page on another origin, in headless Chromium', () => {
  let daemon: Daemon;
  let page: Server;
  let pagePort: number;
  let browser: Browser;
  let cleanup: () => void;

  beforeAll(async () => {
    const temp = makeTempDir();
    cleanup = temp.cleanup;
    daemon = await startTestDaemon(temp.dir, [fakeUpstream('fake')]);
    await waitFor(() => daemon.registry.get('fake')!.snapshot().state === 'ready', 'the upstream');
    page = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(ATTACK_PAGE));
    await new Promise<void>((resolve) => page.listen(0, '127.0.0.1', resolve));
    pagePort = (page.address() as { port: number }).port;
    browser = await launchChromium(['MAP evil.test 127.0.0.1']);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => page?.close(resolve));
    await daemon?.close();
    cleanup?.();
  });

  async function attack(origin: string, token?: string): Promise<Record<string, Attempt>> {
    const tab = await browser.newPage();
    try {
      await tab.goto(`${origin}/`);
      const bridge = `http://127.0.0.1:${daemon.port}`;
      return await tab.evaluate(
        ([b, t]) =>
          (window as unknown as { run(...a: unknown[]): Promise<Record<string, Attempt>> }).run(
            b,
            t,
            '2026-07-28',
          ),
        [bridge, token] as const,
      );
    } finally {
      await tab.close();
    }
  }

  it('a page on an allowed loopback origin is refused without the token: no session, no /status', async () => {
    const result = await attack(`http://localhost:${pagePort}`);
    expect(result.initialize!.status).toBe(401);
    expect(result.initialize!.body).toContain('local access token');
    expect(result.status!.status).toBe(401);
    expect(result.status!.body).not.toContain('"upstreams"');
    expect(result.modern!.status).toBe(401);
    expect(daemon.registry.get('fake')!.snapshot().state).toBe('ready');
  });

  it('a page on an origin outside the allowlist learns nothing at all', async () => {
    const result = await attack(`http://evil.test:${pagePort}`);
    for (const attempt of Object.values(result)) {
      expect(attempt.status).toBeUndefined();
      expect(attempt.blocked).toMatch(/Failed to fetch/);
    }
  });

  it('a browser client on an allowed origin that has the token is served, 2026-07-28 headers included', async () => {
    const token = authHeaders(daemon).authorization!.replace('Bearer ', '');
    const result = await attack(`http://localhost:${pagePort}`, token);
    expect(result.initialize!.status).toBe(200);
    expect(result.status!.status).toBe(200);
    expect(result.status!.body).toContain('"upstreams"');
    expect(result.modern!.status).toBe(200);
    expect(result.modern!.body).toContain('fake__echo');
  });
});
