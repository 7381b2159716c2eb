import { encodeHeaderValue, mcpParamHeaders, paramDeclarations } from '../upstream/param-headers.js';
import type { Message } from './http-read.js';

/**
 * What the shim needs of protocol revision 2026-07-28 (no sessions): how a stdio message says it is
 * of that era, and the SEP-2243 headers the daemon's HTTP entry requires on each request. The
 * encoding is the daemon's own `upstream/param-headers.ts` (a pure module without imports, so the
 * shim stays free of the SDK); the tools' `x-mcp-header` declarations are learned from the
 * tools/list answers the shim forwards (or its served cache): the exposed names and schemas are
 * the daemon's, only it can compute them.
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

/** The `x-mcp-header` declarations of the tools the client was shown, by exposed name. */
export class ParamHeaders {
  /** The input schemas that declare mirrored arguments (most tools declare none). */
  private readonly schemas = new Map<string, unknown>();

  /** Takes note of a tools/list page (as the daemon answered it). */
  learn(result: unknown): void {
    const tools = (result as { tools?: unknown } | undefined)?.tools;
    if (!Array.isArray(tools)) return;
    for (const tool of tools) {
      if (tool === null || typeof tool !== 'object') continue;
      const { name, inputSchema } = tool as { name?: unknown; inputSchema?: unknown };
      if (typeof name !== 'string') continue;
      if (paramDeclarations(inputSchema).length > 0) this.schemas.set(name, inputSchema);
      else this.schemas.delete(name);
    }
  }

  headers(tool: unknown, args: unknown): Record<string, string> {
    const schema = typeof tool === 'string' ? this.schemas.get(tool) : undefined;
    return schema === undefined ? {} : mcpParamHeaders(schema, args);
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
  if (typeof name === 'string') headers['mcp-name'] = encodeHeaderValue(name);
  if (message.method === 'tools/call')
    Object.assign(headers, params.headers(message.params?.name, message.params?.arguments));
  return headers;
}
