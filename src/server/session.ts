import { type NodeMcpRequestHandler, toNodeHandler, toWebRequest } from '@modelcontextprotocol/node';
import {
  createMcpHandler,
  isInitializeRequest,
  isLegacyRequest,
  type McpHttpHandler,
} from '@modelcontextprotocol/server';
import type { Request, Response } from 'express';
import type { Catalog } from '../catalog/catalog.js';
import { DEFAULTS } from '../config/schema.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { mcpParamMismatch } from '../upstream/param-headers.js';
import type { UpstreamSource } from '../upstream/registry-view.js';
import { sendHttpError } from './http-error.js';
import { LegacySessions } from './legacy-sessions.js';
import { createMcpServer, type McpServerDeps } from './mcp-server.js';
import { Relay } from './relay.js';
import { ResourceSubscriptions } from './resource-subscriptions.js';
import { SessionLimit } from './session-limit.js';

export { SERVER_CAPABILITIES } from './mcp-server.js';

/** The id of a single JSON-RPC request body, for error answers. */
function requestId(body: unknown): string | number | null {
  const id = (body as { id?: unknown } | undefined)?.id;
  return typeof id === 'string' || typeof id === 'number' ? id : null;
}

export interface SessionManagerOptions {
  readonly catalog: Catalog;
  /** For the upstreams' resources/updated notifications. */
  readonly registry: UpstreamSource;
  readonly logger: Logger;
  /** Largest POST body the transport accepts. */
  readonly maxBodyBytes: number;
  /** Items per page of the lists clients get (default 5000); the cursor is the offset of the next page. */
  readonly pageSize?: number;
  /** A session with no open request for this long is closed (clients that vanished without DELETE). */
  readonly idleTimeoutMs?: number;
  /** Open sessions at most (default DEFAULTS.maxSessions); an initialize past it gets 503. */
  readonly maxSessions?: number;
  /** At maxSessions, an idle session makes room once idle this long (default 60 s; see SessionLimit). */
  readonly evictIdleAfterMs?: number;
  /**
   * Who a request comes from (the public listener: the grant of its bearer token). A 2025 session
   * belongs to whoever opened it; a request of anyone else finds no such session.
   */
  readonly ownerOf?: ((req: Request) => string | undefined) | undefined;
  /** Resumable streams for every session, not only those whose Host is not loopback (tunnels). */
  readonly alwaysResumable?: boolean | undefined;
}

/**
 * The /mcp endpoint: decides the era of each request and, for the 2025 era, its session. 2025
 * sessions (Mcp-Session-Id) live in LegacySessions; 2026-07-28 requests go to one stateless handler.
 * Both serve the shared catalog through the same server factory (mcp-server.ts).
 */
export class SessionManager {
  private readonly legacy: LegacySessions;
  /** The stateless 2026-07-28 era: one server per request, change events via subscriptions/listen. */
  private readonly modern: { handler: McpHttpHandler; node: NodeMcpRequestHandler };
  private readonly relay = new Relay();
  private readonly resources: ResourceSubscriptions;
  /** The listeners this manager registered on the catalog and the registry. */
  private readonly disposers: (() => void)[] = [];

  constructor(private readonly options: SessionManagerOptions) {
    const { catalog, logger } = options;
    this.resources = new ResourceSubscriptions(
      (method, params) => catalog.resourceRequest(method, params),
      logger,
    );
    const deps: McpServerDeps = {
      catalog,
      relay: this.relay,
      resources: this.resources,
      pageSize: options.pageSize ?? 5000,
    };
    this.legacy = new LegacySessions({
      catalog,
      resources: this.resources,
      createServer: (subscriptions) => createMcpServer(deps, subscriptions),
      limit: new SessionLimit(
        options.maxSessions ?? DEFAULTS.maxSessions,
        options.evictIdleAfterMs ?? 60_000,
        logger,
      ),
      logger,
      maxBodyBytes: options.maxBodyBytes,
      callTool: (server, params, ctx) =>
        this.relay.run(server, ctx, `tool ${String(params.name)}`, (callOptions) =>
          catalog.callTool(params as Parameters<Catalog['callTool']>[0], callOptions),
        ),
      idleTimeoutMs: options.idleTimeoutMs ?? 30 * 60_000,
      ownerOf: options.ownerOf,
      alwaysResumable: options.alwaysResumable ?? false,
    });
    const handler = createMcpHandler(() => createMcpServer(deps, new Map()), {
      legacy: 'reject',
      onerror: (error) => logger.debug({ err: errorMessage(error) }, 'modern-era request failed'),
    });
    this.modern = { handler, node: toNodeHandler(handler, { maxRequestBodySize: options.maxBodyBytes }) };
    this.disposers.push(
      catalog.onChanged((kind) => {
        if (kind === 'tools') handler.notify.toolsChanged();
        else if (kind === 'prompts') handler.notify.promptsChanged();
        else handler.notify.resourcesChanged();
      }),
      // Through the registry, so upstreams a reload adds are heard too.
      options.registry.onResourceUpdated((name, uri, params) => {
        const exposed = catalog.exposedUri(name, uri);
        this.legacy.resourceUpdated(exposed, params);
        handler.notify.resourceUpdated(exposed);
      }),
    );
  }

  /** A 2025 session's tool-call hot path (server/fast-path.ts), if it may take one. */
  fastSession(id: string, owner?: string): ReturnType<LegacySessions['fastSession']> {
    return this.legacy.fastSession(id, owner);
  }

  get size(): number {
    return this.legacy.size;
  }

  /** The 2025 sessions' clients (2026-07-28 requests have no session to list). */
  clients(): ReturnType<LegacySessions['clients']> {
    return this.legacy.clients();
  }

  /** Whether `id` is an open 2025-era session (its initialize passed the access guard). */
  has(id: string): boolean {
    return this.legacy.has(id);
  }

  /**
   * Ends every 2025-era session now, open streams included: after the access token is rotated,
   * nothing opened with the old one may go on. Clients that have the new token start again.
   */
  endSessions(reason: string, owners?: ReadonlySet<string>): void {
    this.legacy.endAll(reason, owners);
  }

  async handle(req: Request, res: Response): Promise<void> {
    const header = req.headers['mcp-session-id'];
    const sessionId = Array.isArray(header) ? header[0] : header;
    // 2026-07-28 requests carry their protocol version in each request and no session: the SDK's own
    // classification decides, and the stateless modern handler serves them from the same catalog.
    if (
      !sessionId &&
      req.method === 'POST' &&
      !(await isLegacyRequest(await toWebRequest(req, req.body), req.body))
    ) {
      const mismatch = this.paramHeaderMismatch(req);
      if (mismatch) {
        sendHttpError(res, 'HEADER_MISMATCH', `Header mismatch: ${mismatch}`, { id: requestId(req.body) });
        return;
      }
      await this.listenTo(req, res);
      await this.modern.node(req, res, req.body);
      return;
    }
    if (sessionId) {
      if (!(await this.legacy.serve(sessionId, req, res))) {
        sendHttpError(
          res,
          'SESSION_NOT_FOUND',
          `Session not found: "${sessionId}" is unknown or has ended; send initialize to start a new session`,
          { id: requestId(req.body) },
        );
      }
      return;
    }
    if (req.method === 'POST' && isInitializeRequest(req.body)) {
      await this.legacy.initialize(req, res, requestId(req.body));
      return;
    }
    sendHttpError(
      res,
      'SESSION_REQUIRED',
      req.method === 'POST'
        ? 'Bad Request: missing Mcp-Session-Id header; send initialize first to start a session'
        : `Bad Request: ${req.method} needs an Mcp-Session-Id header`,
      { id: requestId(req.body) },
    );
  }

  /** Ends every session (daemon shutdown). */
  async closeAll(): Promise<void> {
    for (const dispose of this.disposers.splice(0)) dispose();
    this.relay.close();
    await this.modern.handler.close().catch(() => {});
    await this.legacy.closeAll();
  }

  /**
   * SEP-2243: on a 2026-07-28 tools/call, the `Mcp-Param-*` headers must mirror the arguments the
   * tool's schema marks with `x-mcp-header` (the SDK checks this only for its high-level server).
   */
  private paramHeaderMismatch(req: Request): string | undefined {
    const body = req.body as
      | { method?: unknown; params?: { name?: unknown; arguments?: unknown } }
      | undefined;
    if (body?.method !== 'tools/call' || typeof body.params?.name !== 'string') return undefined;
    const tool = this.options.catalog.tool(body.params.name);
    if (!tool) return undefined;
    return mcpParamMismatch(tool.inputSchema, body.params.arguments, (name) => {
      const value = req.headers[name.toLowerCase()];
      return Array.isArray(value) ? value.join(', ') : value;
    });
  }

  /**
   * A 2026-07-28 `subscriptions/listen` stream that names resources: the SDK serves the stream, and
   * the bridge subscribes the upstreams for as long as it stays open.
   */
  private async listenTo(req: Request, res: Response): Promise<void> {
    const body = req.body as {
      method?: unknown;
      params?: { notifications?: { resourceSubscriptions?: unknown } };
    };
    const uris =
      body?.method === 'subscriptions/listen' ? body.params?.notifications?.resourceSubscriptions : undefined;
    if (!Array.isArray(uris)) return;
    const held: string[] = [];
    // Listened to before subscribing: a client that goes away meanwhile still gives its URIs back.
    let closed = false;
    res.once('close', () => {
      closed = true;
      for (const uri of held.splice(0)) void this.resources.unsubscribe(uri);
    });
    for (const uri of new Set(uris.filter((u): u is string => typeof u === 'string'))) {
      try {
        await this.resources.subscribe(uri);
        if (closed) void this.resources.unsubscribe(uri);
        else held.push(uri);
      } catch (error) {
        this.options.logger.info(
          { uri, err: errorMessage(error) },
          'could not subscribe upstream for a listen stream',
        );
      }
    }
  }
}
