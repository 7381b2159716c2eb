/**
 * SEP-2243 (2026-07-28, Streamable HTTP): a tool argument whose schema property carries
 * `"x-mcp-header": "Name"` is mirrored into an `Mcp-Param-Name` request header, so proxies can
 * route on it without reading the body. A value that is not plain printable ASCII travels as
 * `=?base64?<base64 of its UTF-8>?=`. The server checks that header and body agree.
 */

interface Declaration {
  /** Where the argument sits in `arguments` (a chain of `properties` keys). */
  readonly path: readonly string[];
  /** The header is `Mcp-Param-<header>`. */
  readonly header: string;
}

const PREFIX = 'Mcp-Param-';
const SENTINEL = /^=\?base64\?(.*)\?=$/i;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** The mirrored arguments of a tool, following `properties` chains only (as the SEP allows). */
export function paramDeclarations(inputSchema: unknown): Declaration[] {
  const found: Declaration[] = [];
  const walk = (node: unknown, path: string[]) => {
    if (node === null || typeof node !== 'object') return;
    const schema = node as Record<string, unknown>;
    const header = schema['x-mcp-header'];
    if (path.length > 0 && typeof header === 'string' && header.length > 0) found.push({ path, header });
    const properties = schema.properties;
    if (properties !== null && typeof properties === 'object') {
      for (const [key, child] of Object.entries(properties)) walk(child, [...path, key]);
    }
  };
  walk(inputSchema, []);
  return found;
}

function valueAt(args: unknown, path: readonly string[]): unknown {
  let node = args;
  for (const key of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

/** The text a primitive argument is mirrored as; undefined for anything that is not mirrored. */
function asText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean') return String(value);
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return undefined;
}

/** A header value as SEP-2243 carries it: plain printable ASCII as is, anything else as `=?base64?…?=`. */
export function encodeHeaderValue(text: string): string {
  const plain = /^[\x20-\x7E]*$/.test(text) && text.trim() === text && !SENTINEL.test(text);
  return plain ? text : `=?base64?${Buffer.from(text, 'utf8').toString('base64')}?=`;
}

/** The `Mcp-Param-*` headers for one tools/call to a 2026-07-28 HTTP upstream. */
export function mcpParamHeaders(inputSchema: unknown, args: unknown): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const { path, header } of paramDeclarations(inputSchema)) {
    const text = asText(valueAt(args, path));
    if (text !== undefined) headers[`${PREFIX}${header}`] = encodeHeaderValue(text);
  }
  return headers;
}

/**
 * Why the `Mcp-Param-*` headers of a tools/call do not match its arguments, or undefined when
 * they do. `headerOf` reads a request header by (case-insensitive) name.
 */
export function mcpParamMismatch(
  inputSchema: unknown,
  args: unknown,
  headerOf: (name: string) => string | undefined,
): string | undefined {
  for (const { path, header } of paramDeclarations(inputSchema)) {
    const name = `${PREFIX}${header}`;
    const raw = headerOf(name);
    const text = asText(valueAt(args, path));
    if (raw === undefined) {
      if (text !== undefined) return `${name} is missing; it must mirror the argument "${path.join('.')}"`;
      continue;
    }
    let value = raw;
    const wrapped = SENTINEL.exec(raw);
    if (wrapped) {
      if (!BASE64.test(wrapped[1]!)) return `${name} is not valid Base64 inside =?base64?…?=`;
      value = Buffer.from(wrapped[1]!, 'base64').toString('utf8');
    }
    if (text === undefined) return `${name} is set but the argument "${path.join('.')}" is absent`;
    if (value !== text) return `${name} does not match the argument "${path.join('.')}"`;
  }
  return undefined;
}
