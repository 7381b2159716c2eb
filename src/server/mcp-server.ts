import { Server } from '@modelcontextprotocol/server';
import type { Catalog } from '../catalog/catalog.js';
import { VERSION } from '../version.js';
import { toProtocolError } from './protocol-error.js';
import type { Relay } from './relay.js';
import type { ResourceSubscriptions } from './resource-subscriptions.js';
import { serveLists } from './served-lists.js';

/** What initialize answers; the served cache (catalog/served-cache.ts) records it for the shim. */
export const SERVER_CAPABILITIES = {
  tools: { listChanged: true },
  prompts: { listChanged: true },
  resources: { subscribe: true, listChanged: true },
  completions: {},
  logging: {},
};

export interface McpServerDeps {
  readonly catalog: Catalog;
  readonly relay: Relay;
  readonly resources: ResourceSubscriptions;
  /** Items per page of the merged lists. */
  readonly pageSize: number;
}

/**
 * The exposed URIs one 2025 session subscribed to, each with its upstream subscribe: it is in the
 * map from the moment it is asked for, so a session that ends meanwhile still gives it back.
 */
export type SessionSubscriptions = Map<string, Promise<void>>;

/**
 * One SDK Server that serves the shared catalog: a 2025 session's own, or a 2026-07-28 request's
 * (then `subscriptions` stays empty: that era subscribes with subscriptions/listen).
 */
export function createMcpServer(deps: McpServerDeps, subscriptions: SessionSubscriptions): Server {
  const { catalog, relay, resources } = deps;
  const server = new Server(
    { name: 'mcp-bridge', version: VERSION },
    {
      capabilities: SERVER_CAPABILITIES,
      instructions: catalog.instructions(),
    },
  );
  const routed = <T>(work: () => Promise<T>) =>
    work().catch((error: unknown) => {
      throw toProtocolError(error);
    });
  serveLists(server, catalog, deps.pageSize);
  server.setRequestHandler(
    'prompts/get',
    (request, ctx) =>
      relay.run(server, ctx, `prompt ${request.params.name}`, (options) =>
        catalog.getPrompt(request.params, options),
      ) as never,
  );
  server.setRequestHandler(
    'resources/read',
    (request, ctx) =>
      relay.run(server, ctx, `resource ${request.params.uri}`, (options) =>
        catalog.resourceRequest('resources/read', request.params, options),
      ) as never,
  );
  server.setRequestHandler(
    'completion/complete',
    (request, ctx) => routed(() => catalog.complete(request.params, { signal: ctx.mcpReq.signal })) as never,
  );
  server.setRequestHandler('resources/subscribe', (request) =>
    routed(async () => {
      const uri = request.params.uri;
      let subscribed = subscriptions.get(uri);
      if (!subscribed) {
        const asked = resources.subscribe(uri);
        subscriptions.set(uri, asked);
        asked.catch(() => {
          if (subscriptions.get(uri) === asked) subscriptions.delete(uri);
        });
        subscribed = asked;
      }
      await subscribed;
      return {};
    }),
  );
  server.setRequestHandler('resources/unsubscribe', (request) =>
    routed(async () => {
      if (subscriptions.delete(request.params.uri)) await resources.unsubscribe(request.params.uri);
      return {};
    }),
  );
  server.setRequestHandler('logging/setLevel', async (request) => {
    relay.setLevel(server, request.params.level);
    await catalog.setLogLevel(request.params.level);
    return {};
  });
  server.setRequestHandler('tools/call', (request, ctx) =>
    relay.run(server, ctx, `tool ${request.params.name}`, (options) =>
      catalog.callTool(request.params, options),
    ),
  );
  return server;
}
