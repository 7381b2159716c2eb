import type { Response } from 'express';
import { VERSION } from '../../version.js';

/**
 * The status page's HTML: an empty shell its script (page/status.js) fills from /page/events, and
 * plain pages for the ways in and out. No inline script or style anywhere, so the CSP allows only
 * the page's own files.
 */

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

const BASE_CSP =
  "default-src 'none'; style-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
/** The shell also runs its script, which talks to this origin only. */
const SHELL_CSP = `${BASE_CSP}; script-src 'self'; connect-src 'self'; img-src 'self'`;

/** Headers of every page response: no caching, no framing, no referrer (a login link must not leak). */
export function pageHeaders(res: Response, csp: 'shell' | 'plain' | 'none' = 'plain'): Response {
  if (csp !== 'none') res.setHeader('Content-Security-Policy', csp === 'shell' ? SHELL_CSP : BASE_CSP);
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
  // Other origins cannot load the script, the data or the docs as a subresource either.
  res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
  return res;
}

export const STYLESHEETS =
  '<link rel="stylesheet" href="/page/theme.css">\n<link rel="stylesheet" href="/page/status.css">';

function document(title: string, body: string, script = false): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>${escapeHtml(title)}</title>
${STYLESHEETS}
${script ? '<script type="module" src="/page/status.js"></script>\n' : ''}</head>
<body>
${body}
</body>
</html>
`;
}

/** The page itself; everything in it comes from the script. */
export function shellPage(): string {
  return document(
    'mcp-bridge',
    `<header class="top"><h1>mcp-bridge <span class="muted" id="version">${escapeHtml(VERSION)}</span></h1>
<p id="live" class="live" role="status" aria-live="polite">connecting…</p></header>
<main id="app" aria-busy="true"><noscript><p>The status page needs JavaScript. <code>mcp-bridge status</code> prints the same in a terminal.</p></noscript></main>`,
    true,
  );
}

const HOW_TO_GET_IN = `<p>This page shows what the bridge is doing. It needs the local access token, so it is opened from a terminal, as the user who runs the daemon:</p>
<pre class="cmd"><code>mcp-bridge open</code></pre>
<p>(from a clone: <code>node bin/mcp-bridge.js open</code>). That opens this page with a one-time login link, good for 60 seconds. <code>mcp-bridge open --no-open</code> prints the link instead, for a browser of your choice on this machine.</p>
<p class="muted">The login ends when you close the browser, when the daemon restarts and when the access token is rotated (<code>mcp-bridge token rotate</code>).</p>`;

/** What the page shows without a page session: how to get in, and nothing else. */
export function getInPage(note?: string): string {
  const extra = note ? `<p class="note" role="alert">${escapeHtml(note)}</p>` : '';
  return document(
    'mcp-bridge: open the status page',
    `<main class="narrow"><h1>mcp-bridge status page</h1>${extra}${HOW_TO_GET_IN}</main>`,
  );
}
