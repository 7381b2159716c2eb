import { createHash } from 'node:crypto';

/**
 * The pages the owner's browser sees on the public listener: the consent form an AI app's "Connect"
 * button leads to, and plain message pages. Pure string building; the routes do the I/O.
 * No script at all, so the pages work with JavaScript off and the CSP can forbid every script.
 */

export interface ConsentView {
  /** From dynamic client registration, so untrusted and self-declared; may be absent. */
  readonly clientName: string | undefined;
  /** Shown small, for `mcp-bridge connectors list`. */
  readonly clientId: string;
  /** e.g. "chatgpt.com", "claude.ai", "127.0.0.1:33418" (describeRedirect(...).host). */
  readonly redirectHost: string;
  readonly upstreams: readonly { readonly name: string; readonly tools: number }[];
  /** Form action, a same-origin path; the form is sent with POST. */
  readonly action: string;
  /** Sent back in the hidden input "csrf". */
  readonly csrf: string;
  /** e.g. "Wrong password. 3 tries left before a 15-minute lock." */
  readonly error?: string | undefined;
}

const MAX_SHOWN = 80;

// One stylesheet for every page, so one hash in the CSP covers them all. It must not contain "</".
const STYLE =
  ':root{color-scheme:light dark;--bg:#f3f4f6;--fg:#16191d;--card:#fff;--mute:#5b636d;--line:#d3d8de;' +
  '--acc:#0a58d0;--on-acc:#fff;--err:#a4221a;--err-bg:#fdecea;--hi:#eef3fc}' +
  '@media (prefers-color-scheme:dark){:root{--bg:#0f1114;--fg:#e7e9ec;--card:#1a1d22;--mute:#a2aab4;' +
  '--line:#363c45;--acc:#7ea6ff;--on-acc:#0b0d10;--err:#ffb4ab;--err-bg:#3c1714;--hi:#1e2633}}' +
  '*{box-sizing:border-box}' +
  'body{margin:0;background:var(--bg);color:var(--fg);' +
  'font:17px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;overflow-wrap:anywhere}' +
  'main{max-width:30rem;margin:0 auto;padding:1.25rem 1rem 2rem}' +
  '.card{background:var(--card);border:1px solid var(--line);border-radius:14px;padding:1.25rem}' +
  'h1{font-size:1.35rem;line-height:1.25;margin:0 0 1rem}' +
  '.to{background:var(--hi);border-radius:10px;padding:.75rem 1rem;margin:0 0 1rem}' +
  '.host{display:block;font-size:1.4rem;font-weight:700;margin:.1rem 0}' +
  'ul{padding-left:1.25rem;margin:.25rem 0 .5rem}' +
  '.small,.note{color:var(--mute);font-size:.875rem}.note{display:block}' +
  '.err{background:var(--err-bg);color:var(--err);border-radius:10px;padding:.75rem 1rem;font-weight:600}' +
  'label{display:block;font-weight:600;margin:1rem 0 .35rem}' +
  'input[type=password]{width:100%;font:inherit;padding:.75rem;border:1px solid var(--line);' +
  'border-radius:10px;background:var(--bg);color:inherit}' +
  '.btns{display:flex;gap:.75rem;margin-top:1rem}' +
  'button{flex:1;min-height:48px;font:inherit;font-weight:600;border-radius:10px;cursor:pointer;' +
  'border:1px solid var(--line);background:var(--card);color:inherit}' +
  'button[value=allow]{background:var(--acc);border-color:var(--acc);color:var(--on-acc)}' +
  ':focus-visible{outline:3px solid var(--acc);outline-offset:2px}' +
  'code{font-size:.8rem}';

const STYLE_HASH = `'sha256-${createHash('sha256').update(STYLE, 'utf8').digest('base64')}'`;

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

// Control and format characters could hide or reorder parts of a hostile name (a right-to-left
// override shows "moc.tpgtahc" as "chatgpt.com"), and zero-width ones could fake an empty name.
// ZWNJ and ZWJ stay: Persian words and emoji sequences need them and they cannot reorder text.
const INVISIBLE = /(?![\u200c\u200d])[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu;
const graphemes = new Intl.Segmenter('en', { granularity: 'grapheme' });

/** Untrusted text for display: invisible characters dropped, cut to MAX_SHOWN graphemes, escaped. */
function shown(text: string): string {
  const clean = text.replace(INVISIBLE, '').trim();
  const parts = Array.from(graphemes.segment(clean), (s) => s.segment);
  const cut = parts.length > MAX_SHOWN ? `${parts.slice(0, MAX_SHOWN - 1).join('')}…` : clean;
  return escapeHtml(cut);
}

function page(title: string, body: string): string {
  return (
    '<!doctype html><html lang="en"><head><meta charset="utf-8">' +
    '<meta name="viewport" content="width=device-width,initial-scale=1">' +
    '<meta name="color-scheme" content="light dark"><meta name="referrer" content="no-referrer">' +
    `<title>${title} · mcp-bridge</title><style>${STYLE}</style></head>` +
    `<body><main><div class="card">${body}</div></main></body></html>`
  );
}

function count(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

export function renderConsentPage(view: ConsentView): string {
  // A path that starts with "//" or "/\" is another origin to a browser.
  if (!/^\/(?![/\\])/.test(view.action))
    throw new TypeError('renderConsentPage: action must be a same-origin path');
  // The host is never cut: a hostile registrant could pick "chatgpt.com.<long padding>.evil.example".
  const host = escapeHtml(view.redirectHost);
  const who = escapeHtml(whoFor(view.redirectHost));
  const name = view.clientName === undefined ? '' : shown(view.clientName);
  const registered =
    name === ''
      ? 'It registered without a name.'
      : `It registered as “<bdi>${name}</bdi>”, a name it chose itself: the address above is what to trust.`;
  const total = view.upstreams.reduce((sum, u) => sum + u.tools, 0);
  const tools =
    view.upstreams.length === 0
      ? '<p>No MCP servers are configured yet, so there are no tools to use.</p>'
      : `<p>${who} will be able to use these tools:</p><ul>${view.upstreams
          .map((u) => `<li><bdi>${shown(u.name)}</bdi>: ${count(u.tools, 'tool', 'tools')}</li>`)
          .join('')}</ul><p>${count(total, 'tool', 'tools')} in total.</p>`;
  const error = view.error ? `<p class="err" id="err" role="alert">${escapeHtml(view.error)}</p>` : '';
  const described = view.error
    ? ' aria-invalid="true" aria-describedby="err warn"'
    : ' aria-describedby="warn"';
  return page(
    `Connect ${who}?`,
    `<h1>Connect ${who} to your mcp-bridge?</h1>` +
      `<p class="to">The app at this address gets access:<span class="host">${host}</span>` +
      `<span class="note">${registered}</span></p>` +
      tools +
      error +
      `<form method="post" action="${escapeHtml(view.action)}">` +
      `<input type="hidden" name="csrf" value="${escapeHtml(view.csrf)}">` +
      // A fixed user name lets password managers save and fill the bridge password for this site.
      '<input type="text" name="username" value="owner" autocomplete="username" hidden>' +
      '<label for="password">Bridge password</label>' +
      '<input type="password" id="password" name="password" autocomplete="current-password" ' +
      `autofocus required${described}>` +
      '<p class="note" id="warn">Only the owner of this bridge should type the password. ' +
      'If you did not just press “Connect” yourself, choose Deny.</p>' +
      // Allow comes first: Enter in the password field presses the first button of the form.
      '<div class="btns"><button type="submit" name="decision" value="allow">Allow</button>' +
      '<button type="submit" name="decision" value="deny" formnovalidate>Deny</button></div></form>' +
      `<p class="small">Client ID: <code>${escapeHtml(view.clientId)}</code></p>`,
  );
}

/** Errors, lockout, "denied": a heading and one paragraph. */
export function renderMessagePage(view: { title: string; message: string }): string {
  const title = escapeHtml(view.title);
  return page(title, `<h1>${title}</h1><p>${escapeHtml(view.message)}</p>`);
}

// An http(s) origin exactly as URL.origin writes it, or a bare scheme ("com.example.app:") for a
// native app's redirect. Anything else could smuggle a directive into the header.
function isSource(value: string): boolean {
  if (/^[a-z][a-z0-9+.-]*:$/i.test(value)) return true;
  try {
    const url = new URL(value);
    return (url.protocol === 'https:' || url.protocol === 'http:') && url.origin === value;
  } catch {
    return false;
  }
}

/**
 * Security headers for these pages. form-action lists the client's redirect origin because Chrome also
 * applies it to the redirect that follows the form submission.
 */
export function pageHeaders(formActionOrigins: readonly string[]): Record<string, string> {
  for (const origin of formActionOrigins) {
    if (!isSource(origin)) throw new TypeError(`pageHeaders: not an origin: ${JSON.stringify(origin)}`);
  }
  const formAction = ["'self'", ...new Set(formActionOrigins)].join(' ');
  return {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Security-Policy': `default-src 'none'; style-src ${STYLE_HASH}; form-action ${formAction}; frame-ancestors 'none'; base-uri 'none'`,
    'X-Frame-Options': 'DENY',
    'Referrer-Policy': 'no-referrer',
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
  };
}

const KNOWN: readonly { readonly domain: string; readonly who: string }[] = [
  { domain: 'chatgpt.com', who: 'ChatGPT' },
  { domain: 'claude.ai', who: 'Claude' },
  { domain: 'claude.com', who: 'Claude' },
];

function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

/**
 * The plain-words name for a display host made by describeRedirect. Only a bare "host[:port]" can
 * be a known app or loopback; a host shown with a scheme (plain http, custom schemes) is its own name.
 */
function whoFor(host: string): string {
  const match = /^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::\d+)?$/i.exec(host);
  if (!match) return host;
  const hostname = match[1]!.toLowerCase().replace(/\.$/, '');
  if (isLoopback(hostname)) return 'A local app';
  // Subdomains count: only the owner of the domain can point them anywhere.
  const known = KNOWN.find((k) => hostname === k.domain || hostname.endsWith(`.${k.domain}`));
  return known ? known.who : host;
}

/**
 * Who the client is, in plain words, from its redirect URI: "ChatGPT" for chatgpt.com, "Claude" for
 * claude.ai / claude.com, "A local app" for loopback, else the host. The host is bare for https and
 * loopback; otherwise it keeps its scheme ("http://example.net", "com.example.app:") so the page shows
 * that the code would leave over plain http or to a custom scheme. IDNs come out as punycode (URL does
 * that), which defeats look-alike letters.
 */
export function describeRedirect(redirectUri: string): { readonly who: string; readonly host: string } {
  let url: URL;
  try {
    url = new URL(redirectUri);
  } catch {
    return { who: 'An unknown app', host: 'an invalid address' };
  }
  const web = url.protocol === 'https:' || url.protocol === 'http:';
  let host: string;
  if (url.protocol === 'https:' || (web && isLoopback(url.hostname))) host = url.host;
  else if (url.host !== '') host = `${url.protocol}//${url.host}`;
  else host = url.protocol;
  return { who: whoFor(host), host };
}
