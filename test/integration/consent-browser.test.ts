import { copyFileSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as oauth from 'oauth4webapi';
import type { Browser, BrowserContext, BrowserContextOptions, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir } from '../helpers/bridge.js';
import { launchChromium } from '../helpers/browser.js';
import {
  CHATGPT_REDIRECT,
  type Connection,
  exchange,
  OWNER_PASSWORD,
  type PublicDaemon,
  registerClient,
  startPublicDaemon,
} from '../helpers/connector.js';
import { FAKE_TOOL_COUNT, fakeUpstream } from '../helpers/fake-server.js';
import { waitFor } from '../helpers/wait.js';

/** The consent page opened from an authorization request, with what the browser did around it. */
interface Flow {
  readonly conn: Connection;
  readonly context: BrowserContext;
  readonly page: Page;
  readonly state: string;
  readonly codeVerifier: string;
  /** Every request that reached chatgpt.com (answered locally: the network is closed). */
  readonly landed: URL[];
  /** Console errors about the CSP, and page errors: the page must cause none. */
  readonly problems: string[];
}

/**
 * The owner's side of "Connect" in ChatGPT, in a real browser: the consent page's markup, CSP, form
 * submission and the redirects after it are what a fetch-driven test (connectors.test.ts) cannot see.
 */
describe('the consent page in headless Chromium', () => {
  const tmp = makeTempDir();
  let pub: PublicDaemon;
  let browser: Browser;

  beforeAll(async () => {
    pub = await startPublicDaemon(tmp.dir, [fakeUpstream('notes')]);
    await waitFor(() => pub.daemon.registry.get('notes')!.snapshot().state === 'ready', 'notes');
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await pub?.daemon.close();
    tmp.cleanup();
  });

  async function openConsent(options: BrowserContextOptions = {}): Promise<Flow> {
    const conn = await registerClient(pub.resource);
    const codeVerifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const url = new URL(conn.as.authorization_endpoint!);
    const params = {
      client_id: conn.client.client_id,
      redirect_uri: conn.redirectUri,
      response_type: 'code',
      code_challenge: await oauth.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
      resource: conn.resource,
      scope: 'mcp',
    };
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);

    const context = await browser.newContext(options);
    // A form the CSP blocks leaves click() waiting for a navigation: fail in seconds, not at the test timeout.
    context.setDefaultTimeout(5_000);
    const landed: URL[] = [];
    await context.route('https://chatgpt.com/**', (route) => {
      landed.push(new URL(route.request().url()));
      return route.fulfill({ status: 200, contentType: 'text/html', body: '<title>ChatGPT</title>' });
    });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('console', (m) => {
      if (/Content Security Policy|Refused to/i.test(m.text())) problems.push(m.text());
    });
    page.on('pageerror', (e) => problems.push(String(e)));
    const answer = await page.goto(url.href);
    expect(answer?.status()).toBe(200);
    expect(new URL(page.url()).pathname).toMatch(/^\/consent\//);
    return { conn, context, page, state, codeVerifier, landed, problems };
  }

  /** Waits for the browser to arrive at the client's redirect URI and returns that URL. */
  async function arrived(flow: Flow): Promise<URL> {
    try {
      await flow.page.waitForURL((u) => u.origin === 'https://chatgpt.com', { timeout: 5_000 });
    } catch {
      const shown = await flow.page.locator('body').innerText();
      const csp = flow.problems.length > 0 ? ` (console: ${flow.problems.join(' | ')})` : '';
      throw new Error(`the browser stayed at ${flow.page.url()}, showing: ${shown}${csp}`);
    }
    expect(flow.landed).toHaveLength(1);
    const at = flow.landed[0]!;
    expect(at.origin + at.pathname).toBe(CHATGPT_REDIRECT);
    expect(at.searchParams.get('state')).toBe(flow.state);
    expect(at.searchParams.get('iss')).toBe(pub.issuer);
    return at;
  }

  async function tokensFrom(flow: Flow, location: URL): Promise<oauth.TokenEndpointResponse> {
    return exchange(flow.conn, {
      location,
      state: flow.state,
      codeVerifier: flow.codeVerifier,
      consent: undefined,
      stoppedAt: undefined,
    });
  }

  it('shows who asks and what it reaches, refuses a wrong password, then allows; the code buys a token', async () => {
    const flow = await openConsent({ viewport: { width: 1024, height: 800 } });
    const { page } = flow;
    try {
      expect(await page.title()).toBe('Connect ChatGPT? · mcp-bridge');
      expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe(
        'Connect ChatGPT to your mcp-bridge?',
      );
      expect(await page.locator('.host').textContent()).toBe('chatgpt.com');
      expect(await page.getByRole('listitem').allTextContents()).toEqual([`notes: ${FAKE_TOOL_COUNT} tools`]);
      expect(await page.getByText(flow.conn.client.client_id).count()).toBe(1);
      // The label is tied to the field: what a screen reader and a password manager rely on.
      const password = page.getByLabel('Bridge password');
      expect(await password.getAttribute('type')).toBe('password');
      expect(await page.getByRole('alert').count()).toBe(0);

      const shot = join(tmp.dir, 'consent.png');
      await page.screenshot({ path: shot, fullPage: true });
      expect(statSync(shot).size).toBeGreaterThan(5_000);
      // For a human look at the page: CONSENT_SCREENSHOT_DIR=.scratch npx vitest run <this file>.
      const keep = process.env.CONSENT_SCREENSHOT_DIR;
      if (keep) {
        mkdirSync(keep, { recursive: true });
        copyFileSync(shot, join(keep, 'consent.png'));
      }

      // Allow with an empty password is stopped by the browser itself (required), nothing is sent.
      let posts = 0;
      page.on('request', (r) => {
        if (r.method() === 'POST') posts++;
      });
      await page.getByRole('button', { name: 'Allow' }).click();
      expect(posts).toBe(0);

      const wrong = 'not the password';
      await password.fill(wrong);
      const [refused] = await Promise.all([
        page.waitForResponse((r) => r.request().method() === 'POST'),
        page.getByRole('button', { name: 'Allow' }).click(),
      ]);
      expect(refused.status()).toBe(401);
      expect(await page.getByRole('alert').textContent()).toMatch(/^Wrong password\. 4 tries left/);
      expect(new URL(page.url()).pathname).toMatch(/^\/consent\//);
      expect(flow.landed).toHaveLength(0);
      // The answer page asks again, the field is empty and marked, and the typed text is not echoed.
      expect(await password.inputValue()).toBe('');
      expect(await password.getAttribute('aria-invalid')).toBe('true');
      expect(await page.content()).not.toContain(wrong);

      await password.fill(OWNER_PASSWORD);
      await page.getByRole('button', { name: 'Allow' }).click();
      const at = await arrived(flow);
      expect(at.searchParams.get('code')).toBeTruthy();
      expect(at.searchParams.get('error')).toBeNull();

      const tokens = await tokensFrom(flow, at);
      expect(tokens.token_type.toLowerCase()).toBe('bearer');
      expect(tokens.access_token).toBeTruthy();
      const served = await fetch(pub.resource, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${tokens.access_token}`,
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
        },
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 1,
          method: 'initialize',
          params: {
            protocolVersion: '2025-06-18',
            capabilities: {},
            clientInfo: { name: 't', version: '1' },
          },
        }),
      });
      expect(served.status).toBe(200);
      await served.body?.cancel();
      expect(flow.problems).toEqual([]);
    } finally {
      await flow.context.close();
    }
  });

  it('works on a phone with JavaScript off: fits the screen, Enter in the field means Allow', async () => {
    const flow = await openConsent({
      javaScriptEnabled: false,
      viewport: { width: 390, height: 844 },
      deviceScaleFactor: 3,
      isMobile: true,
      hasTouch: true,
    });
    const { page } = flow;
    try {
      expect(await page.locator('.host').textContent()).toBe('chatgpt.com');
      // Playwright's evaluate runs outside the page's own scripts, so JavaScript off does not stop it.
      // A string, because the project's TypeScript has no DOM types.
      const fit = (await page.evaluate(
        '({ scroll: document.scrollingElement.scrollWidth, inner: window.innerWidth })',
      )) as { scroll: number; inner: number };
      expect(fit.inner).toBe(390);
      expect(fit.scroll).toBeLessThanOrEqual(fit.inner);
      for (const name of ['Allow', 'Deny']) {
        const box = await page.getByRole('button', { name }).boundingBox();
        expect(box!.height, name).toBeGreaterThanOrEqual(44);
        expect(box!.x + box!.width, name).toBeLessThanOrEqual(390);
      }
      await page.screenshot({ path: join(tmp.dir, 'consent-phone.png'), fullPage: true });

      await page.getByLabel('Bridge password').fill(OWNER_PASSWORD);
      await page.getByLabel('Bridge password').press('Enter');
      const at = await arrived(flow);
      const tokens = await tokensFrom(flow, at);
      expect(tokens.access_token).toBeTruthy();
      expect(flow.problems).toEqual([]);
    } finally {
      await flow.context.close();
    }
  });

  it('Deny sends the browser back with access_denied, state and iss, and no code', async () => {
    const flow = await openConsent();
    try {
      await flow.page.getByRole('button', { name: 'Deny' }).click();
      const at = await arrived(flow);
      expect(at.searchParams.get('error')).toBe('access_denied');
      expect(at.searchParams.get('code')).toBeNull();
      expect(flow.problems).toEqual([]);
    } finally {
      await flow.context.close();
    }
  });
});
