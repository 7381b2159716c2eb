import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { SUPPORTED_PROTOCOL_VERSIONS } from '@modelcontextprotocol/server';
import type { Request, Response } from 'express';
import { errorMessage } from '../errors.js';
import { MAX_JSON_DEPTH, nestedDeeperThan } from '../json-depth.js';
import type { BodyBudget } from './body.js';
import { type FastCalls, fastToolCall } from './fast-call.js';
import { sendHttpError } from './http-error.js';

export interface FastPathOptions {
  readonly mcpPath: string;
  readonly maxBodyBytes: number;
  readonly bodies: BodyBudget;
  readonly hostAllowed: (host: string | undefined) => boolean;
  /** The access guard's check (absent with `"auth": "none"`). */
  readonly authorized?: ((req: IncomingMessage) => boolean) | undefined;
  /** The fast calls of an open 2025 session it may serve (not one with resumable streams). */
  readonly session: (
    id: string,
    req: IncomingMessage,
  ) => { calls: FastCalls; begin(res: ServerResponse): void } | undefined;
}

/** UTF-8 JSON only: other charsets are the body parser's to decode. */
const PLAIN_JSON = /^application\/json\s*(;\s*charset=("?)utf-8\2\s*)?$/i;

const header = (req: IncomingMessage, name: string): string | undefined => {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
};

/**
 * In front of express: a 2025 session's POST that carries one `tools/call` (or an answer or a
 * cancellation of one) with a plain JSON body is served here, after the same checks the middleware
 * would make (Host, no browser Origin, the access token, the body budget and depth). Everything
 * else, and anything one of those checks would refuse, goes to `app` untouched, which answers it
 * as before; a body read here is handed on already parsed.
 */
export function withFastPath(options: FastPathOptions, app: RequestListener): RequestListener {
  const versions = new Set<string>(SUPPORTED_PROTOCOL_VERSIONS);
  return (req, res) => {
    const sessionId = header(req, 'mcp-session-id');
    const length = Number(req.headers['content-length']);
    const version = header(req, 'mcp-protocol-version');
    const accept = req.headers.accept ?? '';
    const eligible =
      req.method === 'POST' &&
      req.url === options.mcpPath &&
      sessionId !== undefined &&
      req.headers.origin === undefined &&
      req.headers['content-encoding'] === undefined &&
      req.headers['transfer-encoding'] === undefined &&
      Number.isInteger(length) &&
      length > 0 &&
      length <= options.maxBodyBytes &&
      PLAIN_JSON.test(req.headers['content-type'] ?? '') &&
      accept.includes('application/json') &&
      accept.includes('text/event-stream') &&
      (version === undefined || versions.has(version)) &&
      options.hostAllowed(req.headers.host) &&
      (options.authorized === undefined || options.authorized(req));
    const session = eligible ? options.session(sessionId, req) : undefined;
    if (!session) {
      app(req, res);
      return;
    }
    // The session is looked up again once the body is in: it may have ended meanwhile (DELETE, a
    // token rotation), and then express answers 404 as it would have.
    const still = () => {
      const now = options.session(sessionId as string, req);
      return now?.calls === session.calls && !now.calls.closed ? now : undefined;
    };
    options.bodies.reserve(req as Request, res as Response, () =>
      readBody(req, res, length, still, app, version),
    );
  };
}

function readBody(
  req: IncomingMessage,
  res: ServerResponse,
  length: number,
  session: () => { calls: FastCalls; begin(res: ServerResponse): void } | undefined,
  app: RequestListener,
  protocolVersion: string | undefined,
): void {
  const chunks: Buffer[] = [];
  let received = 0;
  req.on('data', (chunk: Buffer) => {
    received += chunk.length;
    chunks.push(chunk);
  });
  req.once('error', () => res.destroy());
  req.once('end', () => {
    let message: unknown;
    try {
      if (received !== length) throw new Error(`${received} bytes instead of ${length}`);
      const text = (chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)).toString('utf8');
      message = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
      // The body parser's strict mode: only an object or an array is a JSON-RPC body.
      if (typeof message !== 'object' || message === null) throw new Error('not an object or array');
    } catch (error) {
      sendHttpError(
        res,
        'BODY_NOT_JSON',
        `Parse error: the request body is not valid JSON (${errorMessage(error)})`,
      );
      return;
    }
    const tooDeep = nestedDeeperThan(message, MAX_JSON_DEPTH);
    const live = tooDeep ? undefined : session();
    const call = live ? fastToolCall(message) : undefined;
    if (live && call) {
      live.begin(res);
      live.calls.serve(call, res, protocolVersion);
      return;
    }
    if (live?.calls.take(message)) {
      res.writeHead(202).end();
      return;
    }
    // express.json skips a request whose body was read already; refuseDeepJson sees the parsed one.
    (req as IncomingMessage & { body?: unknown }).body = message;
    app(req, res);
  });
}
