import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { NodeStreamableHTTPServerTransport } from '@modelcontextprotocol/node';
import type { Server, ServerContext } from '@modelcontextprotocol/server';
import type { Request, Response } from 'express';
import type { Catalog } from '../catalog/catalog.js';
import { isLoopbackHostname } from '../config/schema.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { OpenCalls } from './cancelled.js';
import { SessionEventStore } from './event-store.js';
import { FastCalls } from './fast-call.js';
import { hostnameOf } from './guards.js';
import type { SessionSubscriptions } from './mcp-server.js';
import type { ResourceSubscriptions } from './resource-subscriptions.js';
import type { SessionLimit } from './session-limit.js';

interface Session {
  readonly server: Server;
  readonly transport: NodeStreamableHTTPServerTransport;
  /** Recent SSE events, for a client that resumes a broken stream (tunnelled sessions only). */
  readonly events: SessionEventStore | undefined;
  /** Exposed URIs this session subscribed to. */
  readonly subscriptions: SessionSubscriptions;
  /** Its calls whose POST is open, so that a cancelled one's response can end. */
  readonly calls: OpenCalls;
  /** Its tool calls on the hot path (fast-path.ts), which the SDK transport never sees. */
  readonly fast: FastCalls;
  /** Its initialize's clientInfo and protocol version, and when it started (for the status page). */
  readonly client: SessionClient;
  /** Who opened it (LegacySessionsOptions.ownerOf); undefined on the loopback listener. */
  readonly owner: string | undefined;
  /** Requests still open (a standalone GET stream stays open while the client listens). */
  open: number;
  lastActive: number;
}

/** A client as the status page shows it. */
export interface SessionClient {
  readonly name: string | undefined;
  readonly version: string | undefined;
  readonly protocolVersion: string | undefined;
  /** Epoch ms. */
  readonly since: number;
}

export interface LegacySessionsOptions {
  readonly catalog: Catalog;
  readonly resources: ResourceSubscriptions;
  /** A session's own SDK Server, serving the catalog. */
  readonly createServer: (subscriptions: SessionSubscriptions) => Server;
  readonly limit: SessionLimit;
  readonly logger: Logger;
  readonly maxBodyBytes: number;
  /** Runs a session's tools/call the way its SDK Server's handler does (relay.ts). */
  readonly callTool: (
    server: Server,
    params: Record<string, unknown>,
    ctx: ServerContext,
  ) => Promise<unknown>;
  /** A session with no open request for this long is closed (clients that vanished without DELETE). */
  readonly idleTimeoutMs: number;
  /** Who a request comes from; a session answers only its opener's requests. */
  readonly ownerOf?: ((req: Request) => string | undefined) | undefined;
  /** Every session gets resumable streams (the public listener: everything comes through a tunnel). */
  readonly alwaysResumable: boolean;
}

/**
 * The 2025-era sessions: one SDK Server + NodeStreamableHTTPServerTransport per Mcp-Session-Id,
 * from initialize until DELETE, idleness, a token rotation or shutdown.
 */
export class LegacySessions {
  private readonly sessions = new Map<string, Session>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly options: LegacySessionsOptions) {
    const idle = options.idleTimeoutMs;
    this.sweeper = setInterval(() => this.closeIdle(idle), Math.min(60_000, idle));
    this.sweeper.unref();
  }

  get size(): number {
    return this.sessions.size;
  }

  has(id: string): boolean {
    return this.sessions.has(id);
  }

  /** The open sessions' clients, oldest first. */
  clients(): (SessionClient & { readonly session: string })[] {
    return [...this.sessions].map(([session, { client }]) => ({ session, ...client }));
  }

  /** Tells each session subscribed to the exposed `uri` that the resource changed. */
  resourceUpdated(uri: string, params: Record<string, unknown>): void {
    for (const session of this.sessions.values()) {
      if (!session.subscriptions.has(uri)) continue;
      session.server.sendResourceUpdated({ ...params, uri }).catch(() => {});
    }
  }

  /**
   * Session `id`'s hot path, for requests of whoever opened it (`owner`). Its streams are
   * resumable in tunnelled sessions too (FastCalls keeps their events in the session's store).
   */
  fastSession(
    id: string,
    owner?: string,
  ): { calls: FastCalls; begin(res: ServerResponse): void } | undefined {
    const session = this.sessions.get(id);
    if (!session || session.owner !== owner) return undefined;
    return {
      calls: session.fast,
      begin: (res) => {
        session.open++;
        res.once('close', () => {
          session.open--;
          session.lastActive = Date.now();
        });
      },
    };
  }

  /** Serves a request of session `id`; false when there is no such session. */
  async serve(id: string, req: Request, res: Response): Promise<boolean> {
    const session = this.sessions.get(id);
    if (!session || session.owner !== this.options.ownerOf?.(req)) return false;
    session.open++;
    res.once('close', () => {
      session.open--;
      session.lastActive = Date.now();
    });
    // A client taking up a hot-path stream it lost: FastCalls owns those, the SDK knows nothing of them.
    const lastEventId = req.headers['last-event-id'];
    if (req.method === 'GET' && typeof lastEventId === 'string' && session.fast.resume(lastEventId, res)) {
      return true;
    }
    if (req.method === 'POST') {
      // Answers to the hot path's requests to the client, and cancellations of its calls, may come
      // this way too (in a batch, chunked, compressed): the SDK server would drop them.
      const rest = session.fast.withoutOwned(req.body);
      if (rest === undefined) {
        res.writeHead(202).end();
        return true;
      }
      req.body = rest;
      session.calls.track(req.body, res);
    }
    await session.transport.handleRequest(req, res, req.body);
    if (req.method === 'POST') session.calls.endCancelled(req.body, session.transport);
    return true;
  }

  /** An initialize: a new session if the limit admits one (else it answered 503). */
  async initialize(req: Request, res: Response, requestId: string | number | null): Promise<void> {
    if (!this.options.limit.admit(this.sessions, (id, session) => this.close(id, session), res, requestId)) {
      return;
    }
    await this.create(req, res);
  }

  /** Ends every session now, open streams included. */
  endAll(reason: string, owners?: ReadonlySet<string>): void {
    const ending = [...this.sessions].filter(
      ([, s]) => !owners || (s.owner !== undefined && owners.has(s.owner)),
    );
    if (ending.length === 0) return;
    this.options.logger.info(
      { sessions: ending.length, reason },
      owners ? 'ending sessions' : 'ending every session',
    );
    for (const [id, session] of ending) this.close(id, session);
  }

  /** Ends every session and the idle sweep (daemon shutdown). */
  async closeAll(): Promise<void> {
    clearInterval(this.sweeper);
    const sessions = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.allSettled(sessions.map((s) => s.server.close()));
  }

  private close(id: string, session: Session): void {
    this.sessions.delete(id);
    void session.server.close().catch(() => {});
  }

  private closeIdle(idleMs: number): void {
    const cutoff = Date.now() - idleMs;
    for (const [id, session] of this.sessions) {
      session.events?.prune();
      if (session.open > 0 || session.lastActive > cutoff) continue;
      this.options.logger.info({ session: id, idleMs }, 'closing an idle session');
      this.close(id, session);
    }
  }

  private async create(req: Request, res: Response): Promise<void> {
    const { catalog, logger: log, resources } = this.options;
    const subscriptions: SessionSubscriptions = new Map();
    const server = this.options.createServer(subscriptions);
    // Resumable streams (a priming event, replay after Last-Event-ID) cost about 1 ms per call, and
    // a loopback stream does not break on its own: only sessions that come in through a tunnel or
    // proxy (a Host other than a loopback name) get them.
    const host = req.headers.host;
    const tunnelled = this.options.alwaysResumable || (host && !isLoopbackHostname(hostnameOf(host)));
    const events = tunnelled ? new SessionEventStore() : undefined;
    const owner = this.options.ownerOf?.(req);
    // Disposed when the transport closes, however the session ends (server.close() closes it).
    let stopListening = () => {};
    let fast: FastCalls | undefined;
    const started = this.options.limit.begin();
    const transport = new NodeStreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      maxRequestBodySize: this.options.maxBodyBytes,
      ...(events ? { eventStore: events, retryInterval: 1000 } : {}),
      onsessioninitialized: (id) => {
        stopListening = catalog.onChanged((kind) => {
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
        fast = new FastCalls(id, (params, ctx) => this.options.callTool(server, params, ctx), events);
        this.sessions.set(id, {
          server,
          transport,
          events,
          subscriptions,
          calls: new OpenCalls(),
          fast,
          owner,
          client: clientOf(req.body),
          open: 0,
          lastActive: Date.now(),
        });
        log.info({ session: id, client: req.body?.params?.clientInfo }, 'session started');
      },
    });
    transport.onclose = () => {
      const id = transport.sessionId;
      stopListening();
      fast?.close();
      for (const uri of subscriptions.keys()) void resources.unsubscribe(uri);
      subscriptions.clear();
      if (id && this.sessions.delete(id)) log.info({ session: id }, 'session ended');
    };
    try {
      await server.connect(transport);
      await transport.handleRequest(req, res, req.body);
    } finally {
      started();
    }
  }
}

function clientOf(body: unknown): SessionClient {
  const params = (body as { params?: { clientInfo?: unknown; protocolVersion?: unknown } } | undefined)
    ?.params;
  const info = (params?.clientInfo ?? {}) as { name?: unknown; version?: unknown };
  const text = (value: unknown) => (typeof value === 'string' ? value.slice(0, 200) : undefined);
  return {
    name: text(info.name),
    version: text(info.version),
    protocolVersion: text(params?.protocolVersion),
    since: Date.now(),
  };
}
