import { randomUUID } from 'node:crypto';
import {
  type NodeMcpRequestHandler,
  NodeStreamableHTTPServerTransport,
  toNodeHandler,
  toWebRequest,
} from '@modelcontextprotocol/node';
import {
  CLIENT_CAPABILITIES_META_KEY,
  createMcpHandler,
  isInitializeRequest,
  isLegacyRequest,
  LOG_LEVEL_META_KEY,
  type McpHttpHandler,
  PROTOCOL_VERSION_META_KEY,
  ProtocolError,
  ProtocolErrorCode,
  Server,
  type ServerContext,
} from '@modelcontextprotocol/server';
import type { Request, Response } from 'express';
import type { Catalog } from '../catalog/catalog.js';
import { DEFAULTS, isLoopbackHostname } from '../config/schema.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { mcpParamMismatch } from '../upstream/param-headers.js';
import type { UpstreamRegistry } from '../upstream/registry.js';
import { type CallOptions, PassthroughResultSchema } from '../upstream/upstream.js';
import { VERSION } from '../version.js';
import { OpenCalls } from './cancelled.js';
import { SessionEventStore } from './event-store.js';
import { hostnameOf } from './guards.js';
import { InputRounds } from './input-required.js';
import { sendJsonRpcError } from './json-rpc-error.js';
import { toProtocolError } from './protocol-error.js';
import { SessionLimit } from './session-limit.js';

/** SEP-2243 HeaderMismatch: HTTP headers that should mirror the body do not. */
const HEADER_MISMATCH = -32020;

const LOG_LEVELS = ['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency'];

/**
 * Whether a call's caller gets an upstream log message: 2025 sessions always (their level is set
 * with logging/setLevel, which reaches the upstreams); a 2026-07-28 request only if its `_meta`
 * envelope names a log level, and only messages at or above it.
 */
function wantsLog(envelope: Record<string, unknown> | undefined, level: unknown): boolean {
  if (envelope?.[PROTOCOL_VERSION_META_KEY] === undefined) return true;
  const wanted = envelope[LOG_LEVEL_META_KEY];
  if (typeof wanted !== 'string') return false;
  return LOG_LEVELS.indexOf(String(level)) >= LOG_LEVELS.indexOf(wanted);
}

/**
 * One page of a merged list. The cursor names the list and the offset of the page; it stays
 * valid while the list changes (a client that gets list_changed lists again anyway).
 */
function page(
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

/** The id of a single JSON-RPC request body, for error answers. */
function requestId(body: unknown): string | number | null {
  const id = (body as { id?: unknown } | undefined)?.id;
  return typeof id === 'string' || typeof id === 'number' ? id : null;
}

export interface SessionManagerOptions {
  readonly catalog: Catalog;
  /** For the upstreams' resources/updated notifications. */
  readonly registry: UpstreamRegistry;
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
}

interface Session {
  readonly server: Server;
  readonly transport: NodeStreamableHTTPServerTransport;
  /** Recent SSE events, for a client that resumes a broken stream (tunnelled sessions only). */
  readonly events: SessionEventStore | undefined;
  /** Exposed URIs this session subscribed to. */
  readonly subscriptions: Set<string>;
  /** Its calls whose POST is open, so that a cancelled one's response can end. */
  readonly calls: OpenCalls;
  /** Requests still open (a standalone GET stream stays open while the client listens). */
  open: number;
  lastActive: number;
}

/** What initialize answers; the served cache (catalog/served-cache.ts) records it for the shim. */
export const SERVER_CAPABILITIES = {
  tools: { listChanged: true },
  prompts: { listChanged: true },
  resources: { subscribe: true, listChanged: true },
  completions: {},
  logging: {},
};

/**
 * One downstream MCP session per client (Mcp-Session-Id), each with its own SDK Server that serves
 * the shared catalog.
 */
export class SessionManager {
  private readonly sessions = new Map<string, Session>();
  private readonly sweeper: NodeJS.Timeout;
  /** Sessions subscribed per exposed URI: the upstream is subscribed once, while anyone is. */
  private readonly subscribers = new Map<string, number>();
  /** The stateless 2026-07-28 era: one server per request, change events via subscriptions/listen. */
  private readonly modern: { handler: McpHttpHandler; node: NodeMcpRequestHandler };
  private readonly stopModern: () => void;
  /** Upstream calls waiting for a 2026-07-28 client's answers. */
  private readonly rounds = new InputRounds();
  /** The level each 2025 session set with logging/setLevel. */
  private readonly logLevels = new WeakMap<Server, string>();
  private readonly limit: SessionLimit;

  constructor(private readonly options: SessionManagerOptions) {
    this.limit = new SessionLimit(
      options.maxSessions ?? DEFAULTS.maxSessions,
      options.evictIdleAfterMs ?? 60_000,
      options.logger,
    );
    const handler = createMcpHandler(() => this.createServer(new Set()), {
      legacy: 'reject',
      onerror: (error) => options.logger.debug({ err: errorMessage(error) }, 'modern-era request failed'),
    });
    this.modern = { handler, node: toNodeHandler(handler, { maxRequestBodySize: options.maxBodyBytes }) };
    this.stopModern = options.catalog.onChanged((kind) => {
      if (kind === 'tools') handler.notify.toolsChanged();
      else if (kind === 'prompts') handler.notify.promptsChanged();
      else handler.notify.resourcesChanged();
    });
    // Through the registry, so upstreams a reload adds are heard too.
    options.registry.onResourceUpdated((name, uri, params) => {
      const exposed = options.catalog.exposedUri(name, uri);
      for (const session of this.sessions.values()) {
        if (!session.subscriptions.has(exposed)) continue;
        session.server.sendResourceUpdated({ ...params, uri: exposed }).catch(() => {});
      }
      this.modern.handler.notify.resourceUpdated(exposed);
    });
    const idle = options.idleTimeoutMs ?? 30 * 60_000;
    this.sweeper = setInterval(() => this.closeIdle(idle), Math.min(60_000, idle));
    this.sweeper.unref();
  }

  get size(): number {
    return this.sessions.size;
  }

  /** Whether `id` is an open 2025-era session (its initialize passed the access guard). */
  has(id: string): boolean {
    return this.sessions.has(id);
  }

  /**
   * Ends every 2025-era session now, open streams included: after the access token is rotated,
   * nothing opened with the old one may go on. Clients that have the new token start again.
   */
  endSessions(reason: string): void {
    if (this.sessions.size === 0) return;
    this.options.logger.info({ sessions: this.sessions.size, reason }, 'ending every session');
    for (const [id, session] of this.sessions) {
      this.sessions.delete(id);
      void session.server.close().catch(() => {});
    }
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
        sendJsonRpcError(
          res,
          400,
          HEADER_MISMATCH,
          `Header mismatch: ${mismatch}`,
          undefined,
          requestId(req.body),
        );
        return;
      }
      await this.listenTo(req, res);
      await this.modern.node(req, res, req.body);
      return;
    }
    if (sessionId) {
      const session = this.sessions.get(sessionId);
      if (!session) {
        sendJsonRpcError(
          res,
          404,
          -32001,
          `Session not found: "${sessionId}" is unknown or has ended; send initialize to start a new session`,
          undefined,
          requestId(req.body),
        );
        return;
      }
      session.open++;
      res.once('close', () => {
        session.open--;
        session.lastActive = Date.now();
      });
      if (req.method === 'POST') session.calls.track(req.body, res);
      await session.transport.handleRequest(req, res, req.body);
      if (req.method === 'POST') session.calls.endCancelled(req.body, session.transport);
      return;
    }
    if (req.method === 'POST' && isInitializeRequest(req.body)) {
      const close = (id: string, session: Session) => {
        this.sessions.delete(id);
        void session.server.close().catch(() => {});
      };
      if (!this.limit.admit(this.sessions, close, res, requestId(req.body))) return;
      await this.create(req, res);
      return;
    }
    sendJsonRpcError(
      res,
      400,
      -32000,
      req.method === 'POST'
        ? 'Bad Request: missing Mcp-Session-Id header; send initialize first to start a session'
        : `Bad Request: ${req.method} needs an Mcp-Session-Id header`,
      undefined,
      requestId(req.body),
    );
  }

  /** Ends every session (daemon shutdown). */
  async closeAll(): Promise<void> {
    clearInterval(this.sweeper);
    this.stopModern();
    this.rounds.close();
    await this.modern.handler.close().catch(() => {});
    const sessions = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.allSettled(sessions.map((s) => s.server.close()));
  }

  private closeIdle(idleMs: number): void {
    const cutoff = Date.now() - idleMs;
    for (const [id, session] of this.sessions) {
      session.events?.prune();
      if (session.open > 0 || session.lastActive > cutoff) continue;
      this.options.logger.info({ session: id, idleMs }, 'closing an idle session');
      this.sessions.delete(id);
      void session.server.close().catch(() => {});
    }
  }

  private async create(req: Request, res: Response): Promise<void> {
    const log = this.options.logger;
    const subscriptions = new Set<string>();
    const server = this.createServer(subscriptions);
    // Resumable streams (a priming event, replay after Last-Event-ID) cost about 1 ms per call, and
    // a loopback stream does not break on its own: only sessions that come in through a tunnel or
    // proxy (a Host other than a loopback name) get them.
    const host = req.headers.host;
    const events = host && !isLoopbackHostname(hostnameOf(host)) ? new SessionEventStore() : undefined;
    let unsubscribe = () => {};
    const started = this.limit.begin();
    const transport = new NodeStreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      maxRequestBodySize: this.options.maxBodyBytes,
      ...(events ? { eventStore: events, retryInterval: 1000 } : {}),
      onsessioninitialized: (id) => {
        unsubscribe = this.options.catalog.onChanged((kind) => {
          const sent =
            kind === 'tools'
              ? server.sendToolListChanged()
              : kind === 'prompts'
                ? server.sendPromptListChanged()
                : server.sendResourceListChanged();
          sent.catch((error: unknown) => {
            log.debug({ session: id, err: errorMessage(error) }, `could not send ${kind}/list_changed`);
          });
        });
        started();
        this.sessions.set(id, {
          server,
          transport,
          events,
          subscriptions,
          calls: new OpenCalls(),
          open: 0,
          lastActive: Date.now(),
        });
        log.info({ session: id, client: req.body?.params?.clientInfo }, 'session started');
      },
    });
    transport.onclose = () => {
      const id = transport.sessionId;
      unsubscribe();
      for (const uri of subscriptions) void this.unsubscribe(uri);
      if (id && this.sessions.delete(id)) log.info({ session: id }, 'session ended');
    };
    try {
      await server.connect(transport);
      await transport.handleRequest(req, res, req.body);
    } finally {
      started();
    }
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

  /** One more subscriber of `uri`; the upstream is subscribed for the first. */
  private async subscribe(uri: string): Promise<void> {
    const count = this.subscribers.get(uri) ?? 0;
    if (count === 0) await this.options.catalog.resourceRequest('resources/subscribe', { uri });
    this.subscribers.set(uri, (this.subscribers.get(uri) ?? 0) + 1);
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
    for (const uri of new Set(uris.filter((u): u is string => typeof u === 'string'))) {
      try {
        await this.subscribe(uri);
        held.push(uri);
      } catch (error) {
        this.options.logger.info(
          { uri, err: errorMessage(error) },
          'could not subscribe upstream for a listen stream',
        );
      }
    }
    res.once('close', () => {
      for (const uri of held) void this.unsubscribe(uri);
    });
  }

  /** Drops one session's interest in `uri`; the upstream is unsubscribed when no session is left. */
  private async unsubscribe(uri: string): Promise<void> {
    const count = (this.subscribers.get(uri) ?? 0) - 1;
    if (count > 0) {
      this.subscribers.set(uri, count);
      return;
    }
    this.subscribers.delete(uri);
    await this.options.catalog.resourceRequest('resources/unsubscribe', { uri }).catch((error: unknown) => {
      this.options.logger.debug({ uri, err: errorMessage(error) }, 'could not unsubscribe upstream');
    });
  }

  private createServer(subscriptions: Set<string>): Server {
    const { catalog } = this.options;
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
    const size = this.options.pageSize ?? 5000;
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
    server.setRequestHandler(
      'prompts/get',
      (request, ctx) =>
        this.relay(server, ctx, `prompt ${request.params.name}`, (options) =>
          catalog.getPrompt(request.params, options),
        ) as never,
    );
    server.setRequestHandler(
      'resources/read',
      (request, ctx) =>
        this.relay(server, ctx, `resource ${request.params.uri}`, (options) =>
          catalog.resourceRequest('resources/read', request.params, options),
        ) as never,
    );
    server.setRequestHandler(
      'completion/complete',
      (request, ctx) =>
        routed(() => catalog.complete(request.params, { signal: ctx.mcpReq.signal })) as never,
    );
    server.setRequestHandler('resources/subscribe', (request) =>
      routed(async () => {
        const uri = request.params.uri;
        if (!subscriptions.has(uri)) {
          await this.subscribe(uri);
          subscriptions.add(uri);
        }
        return {};
      }),
    );
    server.setRequestHandler('resources/unsubscribe', (request) =>
      routed(async () => {
        if (subscriptions.delete(request.params.uri)) await this.unsubscribe(request.params.uri);
        return {};
      }),
    );
    server.setRequestHandler('logging/setLevel', async (request) => {
      this.logLevels.set(server, request.params.level);
      await catalog.setLogLevel(request.params.level);
      return {};
    });
    server.setRequestHandler('tools/call', (request, ctx) =>
      this.relay(server, ctx, `tool ${request.params.name}`, (options) =>
        catalog.callTool(request.params, options),
      ),
    );
    return server;
  }

  /**
   * One upstream request on behalf of a downstream one (tools/call, prompts/get, resources/read):
   * its progress and log messages go to the caller, and so do the upstream's own requests. A 2025
   * session is asked directly; a 2026-07-28 client gets them as `input_required` rounds.
   */
  private async relay(
    server: Server,
    ctx: ServerContext,
    target: string,
    call: (options: CallOptions) => Promise<Record<string, unknown>>,
  ): Promise<never> {
    const envelope = ctx.mcpReq.envelope as Record<string, unknown> | undefined;
    const modern = envelope?.[PROTOCOL_VERSION_META_KEY] !== undefined;
    const progressToken = ctx.mcpReq._meta?.progressToken;
    // Progress and logs go out in order and before the result: the response closes the request's stream.
    let relayed = Promise.resolve();
    let anyProgress = false;
    const send = (notification: { method: string; params: Record<string, unknown> }) => {
      relayed = relayed.then(() => ctx.mcpReq.notify(notification as never)).catch(() => {});
    };
    const base: CallOptions = {
      caller: server,
      signal: ctx.mcpReq.signal,
      onprogress:
        progressToken === undefined
          ? undefined
          : (progress) => {
              anyProgress = true;
              send({ method: 'notifications/progress', params: { ...progress, progressToken } });
            },
      onLog: (params) => {
        if (wantsLog(envelope, params.level)) send({ method: 'notifications/message', params });
      },
    };
    try {
      const result = modern
        ? await this.rounds.run(
            {
              target: `${ctx.mcpReq.method} ${target}`,
              signal: ctx.mcpReq.signal,
              clientCapabilities: envelope?.[CLIENT_CAPABILITIES_META_KEY] as
                | Record<string, unknown>
                | undefined,
              requestState: ctx.mcpReq.requestState(),
              inputResponses: ctx.mcpReq.inputResponses,
              sink: { onprogress: base.onprogress, onLog: base.onLog },
            },
            (options) =>
              call({
                ...base,
                ...options,
                clientCapabilities: envelope?.[CLIENT_CAPABILITIES_META_KEY] as
                  | Record<string, unknown>
                  | undefined,
                logLevel: envelope?.[LOG_LEVEL_META_KEY] as string | undefined,
              }),
          )
        : await call({
            ...base,
            clientCapabilities: server.getClientCapabilities() as Record<string, unknown> | undefined,
            // A 2025 session hears every level until it sets one.
            logLevel: this.logLevels.get(server) ?? 'debug',
            onLaterNotification: (notification) => {
              server.notification(notification as never).catch(() => {});
            },
            onServerRequest: (upstreamRequest) =>
              ctx.mcpReq.send(
                { method: upstreamRequest.method, params: upstreamRequest.params },
                PassthroughResultSchema,
                { signal: ctx.mcpReq.signal },
              ),
          });
      await relayed;
      // SDK clients drop a progress notification read in the same chunk as the result (they
      // settle responses before notification handlers run): let the last one go out first.
      if (anyProgress) await new Promise((resolve) => setImmediate(resolve));
      return result as never;
    } catch (error) {
      throw toProtocolError(error);
    }
  }
}
