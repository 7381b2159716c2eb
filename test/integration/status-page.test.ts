// The status page in headless Chromium: the one-time login, live updates without a reload, the
// reconnect button, no secret anywhere in the page or its data, and refused cross-site actions.
import { copyFileSync, mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/client';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findLocalDaemon } from '../../src/access/local-daemon.js';
import { pageLoginUrl } from '../../src/cli/open.js';
import type { Daemon } from '../../src/daemon.js';
import { connectClient, makeTempDir, startTestDaemon } from '../helpers/bridge.js';
import { launchChromium } from '../helpers/browser.js';
import { fakeUpstream } from '../helpers/fake-server.js';
import { waitFor } from '../helpers/wait.js';

const ENV_SECRET = 'sk-test-secret-value-1234';
const SCRATCH = join(import.meta.dirname, '..', '..', '.scratch');

/** A page of "another program on a loopback port" that tries the page's action with the owner's cookie. */
const ATTACK_PAGE = `<!doctype html><meta charset="utf-8"><title>other</title>
<form id="f" method="POST" enctype="text/plain"><input name='{"upstream":"alpha","x":"' value='"}'></form>
<script>
window.attempt = async (url) => {
  const out = {};
  try { await fetch(url, { method: 'POST', mode: 'no-cors', credentials: 'include', body: '{"upstream":"alpha"}' }); out.noCors = 'sent'; } catch (e) { out.noCors = String(e); }
  try { const r = await fetch(url, { method: 'POST', credentials: 'include', headers: { 'content-type': 'application/json', 'x-page-key': 'guess' }, body: '{"upstream":"alpha"}' }); out.cors = r.status; } catch (e) { out.cors = String(e); }
  return out;
};
</script>`;

describe('the status page in headless Chromium', () => {
  let daemon: Daemon;
  let base: string;
  let dir: string;
  let cleanup: () => void;
  let browser: Browser;
  let context: BrowserContext;
  let tab: Page;
  let client: Client;
  let other: Server;
  let otherPort: number;
  const state = (name: string) => tab.locator(`[data-upstream="${name}"] [data-field="state"]`);
  const restarts = (name: string) => tab.locator(`[data-upstream="${name}"] [data-field="restarts"]`);

  beforeAll(async () => {
    ({ dir, cleanup } = makeTempDir());
    daemon = await startTestDaemon(
      dir,
      [fakeUpstream('alpha', { API_KEY: ENV_SECRET }), fakeUpstream('beta')],
      {
        // Long enough for the page (and this test) to see `backoff` after a crash.
        upstreamDefaults: { backoff: { minMs: 1500, maxMs: 3000, factor: 2 } },
      },
    );
    base = `http://127.0.0.1:${daemon.port}`;
    await waitFor(() => daemon.registry.snapshots().every((s) => s.state === 'ready'), 'upstreams ready');
    client = await connectClient(daemon.url, 'page-test-client');
    await client.callTool({ name: 'alpha__echo', arguments: { text: 'hello' } });
    other = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(ATTACK_PAGE));
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    otherPort = (other.address() as { port: number }).port;
    browser = await launchChromium(['MAP evil.test 127.0.0.1']);
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
    tab = await context.newPage();
  }, 60_000);

  afterAll(async () => {
    await client?.close();
    await browser?.close();
    await new Promise((resolve) => other?.close(resolve));
    await daemon?.close();
    cleanup?.();
  });

  it('shows only how to get in without a login', async () => {
    const response = await tab.goto(`${base}/`);
    expect(response?.status()).toBe(401);
    await expect.poll(() => tab.textContent('body')).toContain('mcp-bridge open');
    expect(await tab.content()).not.toContain('alpha');
  });

  it('logs in with the one-time link of `mcp-bridge open` and lists the upstreams with their states', async () => {
    const local = await findLocalDaemon({ host: '127.0.0.1', port: daemon.port, configDir: dir });
    await tab.goto(await pageLoginUrl(local!));
    await expect.poll(() => state('alpha').textContent()).toBe('ready');
    expect(await state('beta').textContent()).toBe('ready');
    // The code went with the redirect, the page key with the script: the address bar is bare.
    expect(tab.url()).toBe(`${base}/`);
    const text = (await tab.textContent('body')) ?? '';
    expect(text).toContain('page-test-client');
    expect(text).toContain('alpha__echo');
    expect(await tab.locator(`[data-upstream="alpha"] [data-field="pid"]`).textContent()).toBe(
      String(daemon.registry.get('alpha')!.snapshot().pid),
    );
  });

  it("turns a killed child's row to backoff and back to ready, without a reload", async () => {
    let navigations = 0;
    tab.on('framenavigated', () => navigations++);
    await tab.evaluate(() => Object.assign(window, { marker: 'still here' }));
    const pid = daemon.registry.get('alpha')!.snapshot().pid!;
    process.kill(pid);
    await expect.poll(() => state('alpha').textContent(), { timeout: 10_000 }).toBe('backoff');
    await expect.poll(() => state('alpha').textContent(), { timeout: 15_000 }).toBe('ready');
    expect(await tab.evaluate(() => (window as unknown as { marker?: string }).marker)).toBe('still here');
    expect(navigations).toBe(0);
    expect(await tab.textContent('[data-upstream="alpha"] .error')).toContain('UPSTREAM_CLOSED');
    expect(await tab.getAttribute('[data-upstream="alpha"] .error a', 'href')).toBe(
      '/docs/errors#UPSTREAM_CLOSED',
    );
    const shot = join(dir, 'status-page.png');
    await tab.screenshot({ path: shot, fullPage: true });
    mkdirSync(SCRATCH, { recursive: true });
    copyFileSync(shot, join(SCRATCH, 'status-page.png'));
    // A phone in dark mode: one column, nothing wider than the screen.
    await tab.emulateMedia({ colorScheme: 'dark' });
    await tab.setViewportSize({ width: 390, height: 844 });
    expect(await tab.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await tab.screenshot({ path: join(dir, 'status-page-phone-dark.png'), fullPage: true });
    copyFileSync(join(dir, 'status-page-phone-dark.png'), join(SCRATCH, 'status-page-phone-dark.png'));
    await tab.emulateMedia({ colorScheme: 'light' });
    await tab.setViewportSize({ width: 1280, height: 900 });
  }, 40_000);

  it('reconnects an upstream with its button: through starting to ready, one restart more', async () => {
    const before = Number(await restarts('beta').textContent());
    await tab.evaluate(() => {
      const seen: string[] = [];
      Object.assign(window, { seen });
      new MutationObserver(() => {
        const now = document.querySelector('[data-upstream="beta"] [data-field="state"]')?.textContent;
        if (now && seen.at(-1) !== now) seen.push(now);
      }).observe(document.getElementById('app')!, { childList: true, subtree: true });
    });
    // With the keyboard: the button keeps its focus while the page re-renders around it.
    await tab.locator('[data-upstream="beta"] button', { hasText: 'Reconnect now' }).focus();
    await tab.keyboard.press('Enter');
    await expect.poll(async () => Number(await restarts('beta').textContent())).toBe(before + 1);
    await expect.poll(() => state('beta').textContent()).toBe('ready');
    expect(await tab.evaluate(() => (document.activeElement as HTMLElement | null)?.dataset.focus)).toBe(
      'reconnect:beta',
    );
    const seen = await tab.evaluate(() => (window as unknown as { seen: string[] }).seen);
    expect(seen).toContain('starting');
    expect(seen.at(-1)).toBe('ready');
  });

  it('has neither the access token nor an env secret in the page, its data or what Copy copies', async () => {
    const token = daemon.accessToken!;
    const data = await tab.evaluate(async () => {
      const key = localStorage.getItem('mcp-bridge.pageKey')!;
      const json = await (await fetch('/page/data', { headers: { 'x-page-key': key } })).text();
      const controller = new AbortController();
      const response = await fetch('/page/events', {
        headers: { 'x-page-key': key },
        signal: controller.signal,
      });
      const reader = response.body!.getReader();
      const { value } = await reader.read();
      controller.abort();
      return { json, events: new TextDecoder().decode(value) };
    });
    expect(data.json).toContain('"upstreams"');
    expect(data.events).toContain('event: status');
    const copied: string[] = [];
    for (const button of await tab.locator('.snippet button').all()) {
      await button.click();
      await expect.poll(() => button.textContent()).toBe('Copied');
      copied.push(await tab.evaluate(() => navigator.clipboard.readText()));
    }
    expect(copied.join('\n')).toContain('claude mcp add --transport http bridge');
    expect(copied.join('\n')).toContain('<ACCESS_TOKEN>');
    for (const text of [await tab.content(), data.json, data.events, ...copied]) {
      expect(text).not.toContain(token);
      expect(text).not.toContain(ENV_SECRET);
    }
  });

  it('refuses an action posted from another origin, cookie or not', async () => {
    const action = `${base}/page/actions/reconnect`;
    const before = daemon.registry.get('alpha')!.snapshot().restarts;
    const attacker = await context.newPage();
    try {
      // Same site (another port of 127.0.0.1): the SameSite=Strict cookie is sent, and refused.
      await attacker.goto(`http://127.0.0.1:${otherPort}/`);
      const attempts = await attacker.evaluate(
        (url) => (window as never as { attempt(u: string): Promise<Record<string, unknown>> }).attempt(url),
        action,
      );
      expect(attempts.cors).toMatch(/Failed to fetch/);
      const [form] = await Promise.all([
        attacker.waitForResponse(action),
        attacker.evaluate((url) => {
          const f = document.getElementById('f') as HTMLFormElement;
          f.action = url;
          f.submit();
        }, action),
      ]);
      expect(form.status()).toBe(403);
      expect(await form.text()).toContain('PAGE_REQUEST_FORBIDDEN');
      // Cross site: the origin guard refuses it before anything looks at a cookie.
      await attacker.goto(`http://evil.test:${otherPort}/`);
      const [cross] = await Promise.all([
        attacker.waitForResponse(action),
        attacker.evaluate((url) => {
          const f = document.getElementById('f') as HTMLFormElement;
          f.action = url;
          f.submit();
        }, action),
      ]);
      expect(cross.status()).toBe(403);
      expect(await cross.text()).toContain('ORIGIN_FORBIDDEN');
    } finally {
      await attacker.close();
    }
    expect(daemon.registry.get('alpha')!.snapshot().restarts).toBe(before);
    expect(daemon.registry.get('alpha')!.snapshot().state).toBe('ready');
  });
});
