import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  type ConsentView,
  describeRedirect,
  pageHeaders,
  renderConsentPage,
  renderMessagePage,
} from '../../src/public/consent-page.js';

const VIEW: ConsentView = {
  clientName: 'ChatGPT',
  clientId: 'c_9f8e7d6c5b4a',
  redirectHost: 'chatgpt.com',
  upstreams: [
    { name: 'github', tools: 41 },
    { name: 'filesystem', tools: 1 },
  ],
  action: '/consent/abc123',
  csrf: 'csrf-token-value',
};

const HOSTILE = `<script>alert("x")</script>&amp;'"><img src=x onerror=alert(1)>`;

/** The text of the page with tags removed and entities decoded, roughly as a reader sees it. */
function visibleText(html: string): string {
  return html
    .replace(/<style>[\s\S]*?<\/style>/, '')
    .replace(/<[^>]*>/g, ' ')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&')
    .replace(/\s+/g, ' ');
}

describe('renderConsentPage', () => {
  it('says who connects, to which host, with which tools', () => {
    const text = visibleText(renderConsentPage(VIEW));
    expect(text).toContain('Connect ChatGPT to your mcp-bridge?');
    expect(text).toContain('ChatGPT will be able to use these tools:');
    expect(text).toContain('github : 41 tools');
    expect(text).toContain('filesystem : 1 tool ');
    expect(text).toContain('42 tools in total.');
    expect(text).toContain('registered as “ ChatGPT ”');
    expect(text).toContain('Only the owner of this bridge should type the password.');
    expect(text).toContain('c_9f8e7d6c5b4a');
    expect(renderConsentPage(VIEW)).toContain('<span class="host">chatgpt.com</span>');
  });

  it('has one POST form with the csrf input, the password field and both buttons, and no script', () => {
    const html = renderConsentPage(VIEW);
    expect(html.match(/<form /g)).toHaveLength(1);
    expect(html).toContain('<form method="post" action="/consent/abc123">');
    expect(html).toContain('<input type="hidden" name="csrf" value="csrf-token-value">');
    expect(html).toMatch(/<label for="password">/);
    expect(html).toContain(
      '<input type="text" name="username" value="owner" autocomplete="username" hidden>',
    );
    expect(html).toMatch(
      /<input type="password" id="password" name="password" autocomplete="current-password" autofocus/,
    );
    const allow = html.indexOf('<button type="submit" name="decision" value="allow">Allow</button>');
    const deny = html.indexOf(
      '<button type="submit" name="decision" value="deny" formnovalidate>Deny</button>',
    );
    // Allow first, so Enter in the password field allows; Deny works with an empty password.
    expect(allow).toBeGreaterThan(html.indexOf('<form'));
    expect(deny).toBeGreaterThan(allow);
    expect(html.indexOf('</form>')).toBeGreaterThan(deny);
    expect(html).not.toMatch(/<script|javascript:|\son\w+=/i);
    expect(html).not.toMatch(/<link|<img|src=|url\(|@import/i);
    expect(html).toContain('<meta name="viewport" content="width=device-width,initial-scale=1">');
    expect(html).toContain('prefers-color-scheme:dark');
  });

  it('shows an error in role="alert" and ties it to the password field', () => {
    const html = renderConsentPage({ ...VIEW, error: 'Wrong password. 3 tries left <soon>.' });
    expect(html).toContain(
      '<p class="err" id="err" role="alert">Wrong password. 3 tries left &lt;soon&gt;.</p>',
    );
    expect(html).toContain('aria-invalid="true" aria-describedby="err warn"');
    expect(renderConsentPage(VIEW)).not.toContain('role="alert"');
  });

  it('escapes hostile client names, upstream names, hosts, ids, csrf and action', () => {
    const html = renderConsentPage({
      clientName: HOSTILE,
      clientId: HOSTILE,
      redirectHost: HOSTILE,
      upstreams: [{ name: HOSTILE, tools: 3 }],
      action: `/consent/"><script>`,
      csrf: `"><script>x</script>`,
      error: HOSTILE,
    });
    expect(html).not.toMatch(/<script|<img/i);
    expect(html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;amp;&#39;&quot;&gt;');
    expect(html).toContain('action="/consent/&quot;&gt;&lt;script&gt;"');
    expect(html).toContain('value="&quot;&gt;&lt;script&gt;x&lt;/script&gt;"');
  });

  it('cuts very long client names to about 80 characters but never the host', () => {
    const longName = `${'A'.repeat(200)}END`;
    const longHost = `chatgpt.com.${'x'.repeat(150)}.evil.example`;
    const html = renderConsentPage({ ...VIEW, clientName: longName, redirectHost: longHost });
    expect(html).toContain(`“<bdi>${'A'.repeat(79)}…</bdi>”`);
    expect(html).not.toContain('END');
    expect(html).toContain(`<span class="host">${longHost}</span>`);
    expect(visibleText(html)).toContain(`Connect ${longHost} to your mcp-bridge?`);
    // Cut by graphemes: a family emoji is not split into its parts.
    const family = '\u{1f468}\u200d\u{1f469}\u200d\u{1f467}';
    const emojiHtml = renderConsentPage({ ...VIEW, clientName: family.repeat(100) });
    expect(emojiHtml).toContain(`<bdi>${family.repeat(79)}…</bdi>`);
  });

  it('drops bidi overrides and invisible characters from the name; an empty name reads as none', () => {
    const html = renderConsentPage({ ...VIEW, clientName: 'Chat\u202emoc.tpgtahc\u0000\u200b' });
    expect(html).toContain('<bdi>Chatmoc.tpgtahc</bdi>');
    for (const clientName of [undefined, '', '  \u200b\u202e ']) {
      const text = visibleText(renderConsentPage({ ...VIEW, clientName }));
      expect(text).toContain('It registered without a name.');
      expect(text).not.toContain('registered as');
    }
  });

  it('names loopback and unknown hosts in plain words, and handles no upstreams', () => {
    const local = visibleText(renderConsentPage({ ...VIEW, redirectHost: '127.0.0.1:33418', upstreams: [] }));
    expect(local).toContain('Connect A local app to your mcp-bridge?');
    expect(local).toContain('127.0.0.1:33418');
    expect(local).toContain('No MCP servers are configured yet');
    const other = visibleText(renderConsentPage({ ...VIEW, redirectHost: 'Claude.AI' }));
    expect(other).toContain('Connect Claude to your mcp-bridge?');
  });

  it('refuses a form action that is not a same-origin path', () => {
    for (const action of ['https://evil.example/x', '//evil.example/x', '/\\evil.example', 'consent']) {
      expect(() => renderConsentPage({ ...VIEW, action })).toThrow(TypeError);
    }
  });

  it('stays small', () => {
    const html = renderConsentPage({
      ...VIEW,
      error: 'Wrong password. 3 tries left before a 15-minute lock.',
    });
    expect(Buffer.byteLength(html)).toBeLessThan(6 * 1024);
  });
});

describe('renderMessagePage', () => {
  it('escapes title and message and uses the same stylesheet', () => {
    const html = renderMessagePage({ title: 'Denied <b>', message: HOSTILE });
    expect(html).toContain('<h1>Denied &lt;b&gt;</h1>');
    expect(html).toContain('<title>Denied &lt;b&gt; · mcp-bridge</title>');
    expect(html).not.toMatch(/<script|<img|<b>/i);
    expect(html.match(/<style>[\s\S]*?<\/style>/)?.[0]).toBe(
      renderConsentPage(VIEW).match(/<style>[\s\S]*?<\/style>/)?.[0],
    );
  });
});

describe('pageHeaders', () => {
  it('allows exactly the inline stylesheet, by its sha256', () => {
    const csp = pageHeaders([])['Content-Security-Policy']!;
    for (const html of [renderConsentPage(VIEW), renderMessagePage({ title: 't', message: 'm' })]) {
      const styles = [...html.matchAll(/<style>([\s\S]*?)<\/style>/g)];
      expect(styles).toHaveLength(1);
      const hash = createHash('sha256').update(styles[0]![1]!, 'utf8').digest('base64');
      expect(csp).toContain(`style-src 'sha256-${hash}';`);
      expect(html).not.toMatch(/\sstyle=/);
    }
    expect(csp).toMatch(/^default-src 'none';/);
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toMatch(/script-src|unsafe/);
  });

  it("lists 'self' and the given origins in form-action, and the other headers", () => {
    const headers = pageHeaders(['https://chatgpt.com', 'http://127.0.0.1:5555', 'https://chatgpt.com']);
    expect(headers['Content-Security-Policy']).toContain(
      "form-action 'self' https://chatgpt.com http://127.0.0.1:5555;",
    );
    expect(headers).toMatchObject({
      'X-Frame-Options': 'DENY',
      'Referrer-Policy': 'no-referrer',
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
      'Content-Type': 'text/html; charset=utf-8',
    });
    expect(pageHeaders(['com.example.app:'])['Content-Security-Policy']).toContain(
      "form-action 'self' com.example.app:;",
    );
  });

  it('refuses anything that is not an origin, so no directive can be smuggled in', () => {
    for (const bad of [
      "https://a.example; script-src 'unsafe-inline'",
      'https://a.example/path',
      'https://a.example\r\nSet-Cookie: x=1',
      '*',
      "'unsafe-inline'",
      'HTTPS://A.example',
    ]) {
      expect(() => pageHeaders([bad])).toThrow(TypeError);
    }
  });
});

describe('describeRedirect', () => {
  it.each([
    ['https://chatgpt.com/connector_platform_oauth_redirect', 'ChatGPT', 'chatgpt.com'],
    ['https://claude.ai/api/mcp/auth_callback', 'Claude', 'claude.ai'],
    ['https://claude.com/api/mcp/auth_callback', 'Claude', 'claude.com'],
    ['https://www.claude.ai/cb', 'Claude', 'www.claude.ai'],
    ['http://127.0.0.1:5555/cb', 'A local app', '127.0.0.1:5555'],
    ['http://[::1]:9/x', 'A local app', '[::1]:9'],
    ['http://localhost:33418/callback', 'A local app', 'localhost:33418'],
    [
      'https://connector.example.org:8443/oauth/cb?x=1',
      'connector.example.org:8443',
      'connector.example.org:8443',
    ],
    // Look-alikes get their real host, not the friendly name.
    ['https://chatgpt.com.evil.example/cb', 'chatgpt.com.evil.example', 'chatgpt.com.evil.example'],
    ['https://evilchatgpt.com/cb', 'evilchatgpt.com', 'evilchatgpt.com'],
    ['https://chatgpt.com@evil.example/cb', 'evil.example', 'evil.example'],
    ['https://chätgpt.com/cb', 'xn--chtgpt-cua.com', 'xn--chtgpt-cua.com'],
    // Plain http off loopback and custom schemes keep their scheme on show.
    ['http://chatgpt.com/cb', 'http://chatgpt.com', 'http://chatgpt.com'],
    ['com.example.app:/oauth', 'com.example.app:', 'com.example.app:'],
    ['not a url', 'An unknown app', 'an invalid address'],
  ])('%s', (uri, who, host) => {
    expect(describeRedirect(uri)).toEqual({ who, host });
  });

  it('its host gives the same name on the consent page', () => {
    for (const uri of [
      'https://claude.ai/x',
      'http://[::1]:9/x',
      'http://chatgpt.com/cb',
      'https://a.example/',
    ]) {
      const { who, host } = describeRedirect(uri);
      expect(visibleText(renderConsentPage({ ...VIEW, redirectHost: host }))).toContain(`Connect ${who} to`);
    }
  });
});
