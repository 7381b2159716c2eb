import { readFileSync } from 'node:fs';
import { escapeHtml, STYLESHEETS } from './page-html.js';

/** Beside src/ and dist/ alike (both are one level below the package root). */
const ERRORS_MD = new URL('../../../docs/errors.md', import.meta.url);

let rendered: string | undefined;

/**
 * GET /docs/errors: docs/errors.md as a page in which every code's row has its code as id, so the
 * status page links each error it shows to `/docs/errors#CODE`. GitHub gives table rows no anchors,
 * and the daemon may run where github.com is not reachable; the local copy is always the daemon's
 * own version. Read once.
 */
export function errorsDocPage(): string {
  rendered ??= render(readErrorsMd());
  return rendered;
}

function readErrorsMd(): string | undefined {
  try {
    return readFileSync(ERRORS_MD, 'utf8');
  } catch {
    return undefined;
  }
}

function render(markdown: string | undefined): string {
  const body =
    markdown === undefined
      ? '<p>docs/errors.md is not part of this installation; it is in the mcp-bridge repository.</p>'
      : blocks(markdown);
  return `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mcp-bridge: error codes</title>${STYLESHEETS}</head>
<body class="doc"><main><p><a href="/">← status page</a></p>${body}</main></body></html>`;
}

/** The few Markdown forms docs/errors.md uses: a heading, paragraphs, one table (one entry per row). */
function blocks(markdown: string): string {
  const out: string[] = [];
  let paragraph: string[] = [];
  const flush = () => {
    if (paragraph.length > 0) out.push(`<p>${inline(paragraph.join(' '))}</p>`);
    paragraph = [];
  };
  for (const line of markdown.split('\n')) {
    if (line.startsWith('# ')) {
      flush();
      out.push(`<h1>${inline(line.slice(2))}</h1>`);
    } else if (line.startsWith('|')) {
      flush();
      out.push(entry(line));
    } else if (line.trim() === '') {
      flush();
    } else {
      paragraph.push(line.trim());
    }
  }
  flush();
  return out.join('\n');
}

/** A row `| code | HTTP | JSON-RPC | exit | meaning |` as a section (a table is too wide on a phone). */
function entry(line: string): string {
  const cells = line
    .split('|')
    .slice(1, -1)
    .map((cell) => cell.trim());
  const code = /^`([A-Z_]+)`$/.exec(cells[0] ?? '')?.[1];
  if (code === undefined) return '';
  const [, http, jsonRpc, exit, meaning] = cells;
  const numbers = [http && http !== '—' ? `HTTP ${http}` : '', `JSON-RPC ${jsonRpc}`, `exit code ${exit}`];
  return `<section class="entry" id="${code}"><h2><a href="#${code}"><code>${code}</code></a></h2>
<p class="muted">${escapeHtml(numbers.filter(Boolean).join(' · '))}</p><p>${inline(meaning ?? '')}</p></section>`;
}

/** `code`, **bold** and [links](…): only https links stay links, the others (other docs) are text. */
function inline(text: string): string {
  return escapeHtml(text)
    .replace(/`([^`]+)`/g, '<code>$1</code>')
    .replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>')
    .replace(/\[([^\]]+)\]\((https:\/\/[^)\s]+)\)/g, '<a href="$2" rel="noreferrer">$1</a>')
    .replace(/\[([^\]]+)\]\([^)\s]+\)/g, '$1');
}
