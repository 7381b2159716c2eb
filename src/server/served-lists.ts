import { ProtocolError, ProtocolErrorCode, type Server } from '@modelcontextprotocol/server';
import type { Catalog } from '../catalog/catalog.js';

/**
 * One page of a merged list. The cursor names the list and the offset of the page; it stays
 * valid while the list changes (a client that gets list_changed lists again anyway).
 */
export function page(
  key: string,
  items: readonly unknown[],
  cursor: string | undefined,
  size: number,
): Record<string, unknown> {
  let offset = 0;
  if (cursor !== undefined) {
    const match = /^([A-Za-z]+):(\d{1,9})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
    offset = Number(match?.[2]);
    if (match?.[1] !== key) {
      throw new ProtocolError(
        ProtocolErrorCode.InvalidParams,
        `Invalid cursor "${cursor}": not one this bridge issued for this list; list again without a cursor`,
      );
    }
  }
  const next = offset + size;
  return {
    [key]: items.slice(offset, next),
    ...(next < items.length ? { nextCursor: Buffer.from(`${key}:${next}`).toString('base64url') } : {}),
  };
}

/** The four merged lists of the catalog, `size` items a page. */
export function serveLists(server: Server, catalog: Catalog, size: number): void {
  server.setRequestHandler(
    'tools/list',
    async (request) => page('tools', catalog.listTools(), request.params?.cursor, size) as never,
  );
  server.setRequestHandler(
    'prompts/list',
    async (request) => page('prompts', catalog.listPrompts(), request.params?.cursor, size) as never,
  );
  server.setRequestHandler(
    'resources/list',
    async (request) => page('resources', catalog.listResources(), request.params?.cursor, size) as never,
  );
  server.setRequestHandler(
    'resources/templates/list',
    async (request) =>
      page('resourceTemplates', catalog.listResourceTemplates(), request.params?.cursor, size) as never,
  );
}
