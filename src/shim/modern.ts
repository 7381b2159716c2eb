import type { Message } from './http-read.js';

/**
 * What the shim needs of protocol revision 2026-07-28 (no sessions): how a stdio message says it is
 * of that era, and the SEP-2243 headers the daemon's HTTP entry requires on each request. The
 * shim cannot import the daemon's `upstream/param-headers.ts` (it stays free of daemon code), so
 * the few lines of `Mcp-Param-*` encoding are repeated here, and the tools' `x-mcp-header`
 * declarations are learned from the tools/list answers the shim forwards (or its served cache):
 * the exposed names and schemas are the daemon's, only it can compute them.
 */

const VERSION_KEY = 'io.modelcontextprotocol/protocolVersion';

/** The methods whose `Mcp-Name` header mirrors a params field (SEP-2243, SEP-2663). */
const NAME_SOURCE: Record<string, string> = {
  'tools/call': 'name',
  'prompts/get': 'name',
  'resources/read': 'uri',
  'tasks/get': 'taskId',
  'tasks/update': 'taskId',
  'tasks/cancel': 'taskId',
};

/** The revision a message's `_meta` envelope names, when it is a stateless (2026+) one. */
export function modernVersion(message: Message): string | undefined {
  const meta = message.params?._meta;
  if (meta === null || typeof meta !== 'object') return undefined;
  const version = (meta as Record<string, unknown>)[VERSION_KEY];
  // Every 2024/2025 revision is session based; later ones are not.
  return typeof version === 'string' && version >= '2026' ? version : undefined;
}

interface Declaration {
  readonly path: readonly string[];
  readonly header: string;
}

const SENTINEL = /^=\?base64\?(.*)\?=$/i;

function declarations(inputSchema: unknown): Declaration[] {
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

function paramText(args: unknown, path: readonly string[]): string | undefined {
  let node = args;
  for (const key of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  if (typeof node === 'string') return node;
  if (typeof node === 'boolean') return String(node);
  if (typeof node === 'number' && Number.isFinite(node)) return String(node);
  return undefined;
}

function encode(text: string): string {
  const plain = /^[\x20-\x7E]*$/.test(text) && text.trim() === text && !SENTINEL.test(text);
  return plain ? text : `=?base64?${Buffer.from(text, 'utf8').toString('base64')}?=`;
}

/** The `x-mcp-header` declarations of the tools the client was shown, by exposed name. */
export class ParamHeaders {
  private readonly byTool = new Map<string, Declaration[]>();

  /** Takes note of a tools/list page (as the daemon answered it). */
  learn(result: unknown): void {
    const tools = (result as { tools?: unknown } | undefined)?.tools;
    if (!Array.isArray(tools)) return;
    for (const tool of tools) {
      if (tool === null || typeof tool !== 'object') continue;
      const { name, inputSchema } = tool as { name?: unknown; inputSchema?: unknown };
      if (typeof name !== 'string') continue;
      const found = declarations(inputSchema);
      if (found.length > 0) this.byTool.set(name, found);
      else this.byTool.delete(name);
    }
  }

  headers(tool: unknown, args: unknown): Record<string, string> {
    const headers: Record<string, string> = {};
    for (const { path, header } of (typeof tool === 'string' && this.byTool.get(tool)) || []) {
      const text = paramText(args, path);
      if (text !== undefined) headers[`Mcp-Param-${header}`] = encode(text);
    }
    return headers;
  }
}

/** The headers the daemon's HTTP entry requires on a 2026-07-28 POST of `message`. */
export function modernHeaders(
  message: Message,
  version: string,
  params: ParamHeaders,
): Record<string, string> {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'mcp-protocol-version': version,
  };
  if (message.method === undefined || message.id === undefined) return headers;
  headers['mcp-method'] = message.method;
  const field = Object.hasOwn(NAME_SOURCE, message.method) ? NAME_SOURCE[message.method] : undefined;
  const name = field === undefined ? undefined : message.params?.[field];
  if (typeof name === 'string') headers['mcp-name'] = encode(name);
  if (message.method === 'tools/call')
    Object.assign(headers, params.headers(message.params?.name, message.params?.arguments));
  return headers;
}
