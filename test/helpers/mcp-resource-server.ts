/**
 * An MCP server over HTTP that can require bearer tokens: OAuth access tokens issued by the
 * {@link AuthServer} fixture (RFC 9728 protected resource metadata, RFC 6750 challenges, RFC 8707
 * audience check), one static token, or nothing. Serves Streamable HTTP (stateful) or the legacy
 * 2024-11-05 HTTP+SSE transport.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { NodeStreamableHTTPServerTransport } from '@modelcontextprotocol/node';
import {
  type AuthInfo,
  isInitializeRequest,
  type JSONRPCMessage,
  type MessageExtraInfo,
  parseJSONRPCMessage,
  Server,
  type Tool,
  type Transport,
} from '@modelcontextprotocol/server';
import express, { type Request, type Response } from 'express';
import type { AuthServer } from './oauth-server.js';

export interface ResourceServerOptions {
  /** Verify tokens against this authorization server (expiry, and audience = this server's URL). */
  auth?: AuthServer;
  /** Alternatively accept exactly `Authorization: Bearer <staticToken>`. Neither => no auth. */
  staticToken?: string;
  /** Default 'streamable' (stateful, Mcp-Session-Id); 'sse' = legacy HTTP+SSE (GET /sse, POST /messages). */
  transport?: 'streamable' | 'sse';
  /** Default true: challenges carry resource_metadata="…" and scope="…"; false => a bare `Bearer` challenge. */
  resourceMetadataInChallenge?: boolean;
  /** Default 'path': /.well-known/oauth-protected-resource/<mcp path>; 'root': /.well-known/oauth-protected-resource. */
  metadataLocation?: 'path' | 'root';
  /** Every tools/call needs this scope, else 403 with error="insufficient_scope". */
  requiredScope?: string;
}

export interface ResourceServerCounts {
  /** 401 responses. */
  unauthorized: number;
  /** 403 insufficient_scope responses. */
  forbidden: number;
  /** tools/call requests that reached a tool. */
  toolCalls: number;
  /** Sessions opened (Streamable HTTP initializations or SSE connections). */
  sessions: number;
}

export interface ResourceServer {
  /** The MCP endpoint, e.g. http://127.0.0.1:PORT/mcp (for 'sse': http://127.0.0.1:PORT/sse). */
  readonly url: string;
  /** Where the RFC 9728 document is served (also when it is not advertised in challenges). */
  readonly resourceMetadataUrl: string;
  readonly counts: ResourceServerCounts;
  /** The Authorization header of every request it received (undefined where there was none). */
  readonly authorizations: readonly (string | undefined)[];
  /** Forgets (and closes) every session: an old Mcp-Session-Id then gets 404, like a restarted server. */
  expireSessions(): void;
  close(): Promise<void>;
}

type AuthResult = { ok: true; info: AuthInfo | undefined } | { ok: false };

/** The legacy HTTP+SSE server transport (protocol 2024-11-05), which SDK v2 no longer ships. */
class LegacySseServerTransport implements Transport {
  readonly sessionId = randomUUID();
  onclose?: (() => void) | undefined;
  onerror?: ((error: Error) => void) | undefined;
  onmessage?: (<T extends JSONRPCMessage>(message: T, extra?: MessageExtraInfo) => void) | undefined;
  #closed = false;

  constructor(
    private readonly endpoint: string,
    private readonly res: ServerResponse,
  ) {}

  async start(): Promise<void> {
    this.res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
    });
    this.res.write(
      `event: endpoint\ndata: ${this.endpoint}?sessionId=${encodeURIComponent(this.sessionId)}\n\n`,
    );
    this.res.on('close', () => this.#finish());
  }

  /** A message POSTed to the endpoint, with the auth of that POST. */
  receive(message: JSONRPCMessage, authInfo: AuthInfo | undefined): void {
    this.onmessage?.(message, authInfo ? { authInfo } : undefined);
  }

  async send(message: JSONRPCMessage): Promise<void> {
    if (this.#closed) throw new Error('SSE stream is closed');
    this.res.write(`event: message\ndata: ${JSON.stringify(message)}\n\n`);
  }

  async close(): Promise<void> {
    this.res.end();
    this.#finish();
  }

  #finish() {
    if (this.#closed) return;
    this.#closed = true;
    this.onclose?.();
  }
}

function quote(value: string): string {
  return `"${value.replace(/["\\]/g, '\\$&')}"`;
}

function jsonRpcError(res: Response, status: number, code: number, message: string): void {
  res.status(status).json({ jsonrpc: '2.0', error: { code, message }, id: null });
}

function callsTool(body: unknown): boolean {
  const messages = Array.isArray(body) ? body : [body];
  return messages.some(
    (m) => typeof m === 'object' && m !== null && (m as { method?: unknown }).method === 'tools/call',
  );
}

const TOOLS: Tool[] = [
  {
    name: 'echo',
    description: 'Returns its text argument',
    inputSchema: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] },
  },
  {
    name: 'whoami',
    description: "The caller's client id and scope, or 'static' / 'anonymous'",
    inputSchema: { type: 'object', properties: {} },
  },
];

function createMcpServer(counts: ResourceServerCounts): Server {
  const server = new Server({ name: 'oauth-fixture', version: '1.0.0' }, { capabilities: { tools: {} } });
  server.setRequestHandler('tools/list', async () => ({ tools: TOOLS }));
  server.setRequestHandler('tools/call', async (request, ctx) => {
    counts.toolCalls++;
    const { name, arguments: args } = request.params;
    if (name === 'echo') return { content: [{ type: 'text', text: String(args?.text ?? '') }] };
    if (name === 'whoami') {
      const info = ctx.http?.authInfo;
      const text =
        info === undefined
          ? 'anonymous'
          : info.clientId === 'static'
            ? 'static'
            : JSON.stringify({ clientId: info.clientId, scope: info.scopes.join(' ') });
      return { content: [{ type: 'text', text }] };
    }
    return { content: [{ type: 'text', text: `unknown tool ${name}` }], isError: true };
  });
  return server;
}

export async function startResourceServer(options: ResourceServerOptions = {}): Promise<ResourceServer> {
  const mode = options.transport ?? 'streamable';
  const mcpPath = mode === 'sse' ? '/sse' : '/mcp';
  const advertise = options.resourceMetadataInChallenge ?? true;
  const counts: ResourceServerCounts = { unauthorized: 0, forbidden: 0, toolCalls: 0, sessions: 0 };
  const streamable = new Map<string, NodeStreamableHTTPServerTransport>();
  const sse = new Map<string, LegacySseServerTransport>();
  const servers = new Set<Server>();

  const app = express();
  const authorizations: (string | undefined)[] = [];
  app.use((req, _res, next) => {
    authorizations.push(req.headers.authorization);
    next();
  });
  const httpServer = createServer(app);
  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(0, '127.0.0.1', () => {
      httpServer.off('error', reject);
      resolve();
    });
  });
  const { port } = httpServer.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  const url = `${origin}${mcpPath}`;
  const metadataPath =
    options.metadataLocation === 'root'
      ? '/.well-known/oauth-protected-resource'
      : `/.well-known/oauth-protected-resource${mcpPath}`;
  const resourceMetadataUrl = `${origin}${metadataPath}`;
  const scopes = options.auth ? [...options.auth.scopes] : [];

  function challenge(error?: { code: string; description: string; scope?: string }): string {
    const params: string[] = [];
    if (error) params.push(`error=${quote(error.code)}`, `error_description=${quote(error.description)}`);
    if (options.auth && advertise) {
      params.push(`resource_metadata=${quote(resourceMetadataUrl)}`);
      const scope = error?.scope ?? scopes.join(' ');
      if (scope) params.push(`scope=${quote(scope)}`);
    } else if (error?.scope) {
      params.push(`scope=${quote(error.scope)}`);
    }
    return params.length > 0 ? `Bearer ${params.join(', ')}` : 'Bearer';
  }

  function unauthorized(res: Response, error?: { code: string; description: string }): AuthResult {
    counts.unauthorized++;
    res.set('www-authenticate', challenge(error));
    res.status(401).json({
      error: error?.code ?? 'unauthorized',
      error_description: error?.description ?? 'a bearer token is required',
    });
    return { ok: false };
  }

  /** Checks the bearer token; on failure the 401 has been sent. */
  async function authenticate(req: Request, res: Response): Promise<AuthResult> {
    if (!options.auth && options.staticToken === undefined) return { ok: true, info: undefined };
    const header = req.get('authorization');
    const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    const token = match?.[1];
    if (!token) return unauthorized(res);
    if (!options.auth) {
      if (token !== options.staticToken) {
        return unauthorized(res, { code: 'invalid_token', description: 'the token is not valid' });
      }
      return { ok: true, info: { token, clientId: 'static', scopes: [] } };
    }
    const accessToken = await options.auth.provider.AccessToken.find(token, { ignoreExpiration: true });
    if (!accessToken) {
      return unauthorized(res, { code: 'invalid_token', description: 'the token is unknown or revoked' });
    }
    if (accessToken.isExpired) {
      return unauthorized(res, { code: 'invalid_token', description: 'the token has expired' });
    }
    const audiences = Array.isArray(accessToken.aud) ? accessToken.aud : [accessToken.aud];
    if (!audiences.includes(url)) {
      return unauthorized(res, { code: 'invalid_token', description: 'the token is not for this resource' });
    }
    return {
      ok: true,
      info: {
        token,
        clientId: accessToken.clientId,
        scopes: accessToken.scope ? accessToken.scope.split(' ') : [],
        expiresAt: accessToken.exp,
        resource: new URL(url),
      },
    };
  }

  /** 403 for a tools/call without {@link ResourceServerOptions.requiredScope}; true when sent. */
  function forbidden(req: Request, res: Response, info: AuthInfo | undefined): boolean {
    const required = options.requiredScope;
    if (!required || !info || info.scopes.includes(required) || !callsTool(req.body)) return false;
    counts.forbidden++;
    const scope = [...new Set([...info.scopes, required])].join(' ');
    res.set(
      'www-authenticate',
      challenge({ code: 'insufficient_scope', description: `this request needs scope ${required}`, scope }),
    );
    res
      .status(403)
      .json({ error: 'insufficient_scope', error_description: `this request needs scope ${required}` });
    return true;
  }

  async function connect(transport: Transport): Promise<Server> {
    const server = createMcpServer(counts);
    servers.add(server);
    server.onclose = () => servers.delete(server);
    await server.connect(transport);
    return server;
  }

  if (options.auth) {
    const auth = options.auth;
    app.get(metadataPath, (_req, res) => {
      res.json({
        resource: url,
        authorization_servers: [auth.issuer],
        scopes_supported: scopes,
        bearer_methods_supported: ['header'],
        resource_name: 'mcp-bridge test resource',
      });
    });
  }

  if (mode === 'streamable') {
    app.all(mcpPath, express.json(), async (req, res) => {
      const auth = await authenticate(req, res);
      if (!auth.ok || forbidden(req, res, auth.info)) return;
      const request = Object.assign(req, { auth: auth.info });
      const sessionId = req.get('mcp-session-id');
      if (sessionId !== undefined) {
        const transport = streamable.get(sessionId);
        if (!transport) return jsonRpcError(res, 404, -32001, 'Session not found');
        return transport.handleRequest(request, res, req.body);
      }
      if (req.method !== 'POST' || !isInitializeRequest(req.body)) {
        return jsonRpcError(res, 400, -32000, 'Bad Request: no valid session ID provided');
      }
      const transport: NodeStreamableHTTPServerTransport = new NodeStreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => {
          counts.sessions++;
          streamable.set(id, transport);
        },
      });
      transport.onclose = () => {
        if (transport.sessionId !== undefined && streamable.get(transport.sessionId) === transport) {
          streamable.delete(transport.sessionId);
        }
      };
      await connect(transport);
      await transport.handleRequest(request, res, req.body);
    });
  } else {
    app.get(mcpPath, async (req, res) => {
      const auth = await authenticate(req, res);
      if (!auth.ok) return;
      const transport = new LegacySseServerTransport('/messages', res);
      sse.set(transport.sessionId, transport);
      counts.sessions++;
      transport.onclose = () => {
        if (sse.get(transport.sessionId) === transport) sse.delete(transport.sessionId);
      };
      await connect(transport);
    });
    app.post('/messages', express.json(), async (req, res) => {
      const auth = await authenticate(req, res);
      if (!auth.ok || forbidden(req, res, auth.info)) return;
      const transport = sse.get(String(req.query.sessionId ?? ''));
      if (!transport) return jsonRpcError(res, 404, -32001, 'Session not found');
      let message: JSONRPCMessage;
      try {
        message = parseJSONRPCMessage(req.body);
      } catch (error) {
        return jsonRpcError(res, 400, -32700, `Invalid JSON-RPC message: ${String(error)}`);
      }
      res.status(202).end('Accepted');
      transport.receive(message, auth.info);
    });
  }

  function expireSessions(): void {
    const transports: Transport[] = [...streamable.values(), ...sse.values()];
    streamable.clear();
    sse.clear();
    for (const transport of transports) void transport.close().catch(() => {});
  }

  return {
    url,
    resourceMetadataUrl,
    counts,
    authorizations,
    expireSessions,
    async close() {
      expireSessions();
      await Promise.allSettled([...servers].map((s) => s.close()));
      httpServer.closeAllConnections();
      await new Promise<void>((resolve) => httpServer.close(() => resolve()));
    },
  };
}
