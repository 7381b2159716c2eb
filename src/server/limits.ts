import { createServer, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { type BridgeConfig, DEFAULTS } from '../config/schema.js';
import type { Logger } from '../log.js';
import { rawHttpError, sendHttpError } from './http-error.js';
import { RefusalLog } from './refusal.js';

/** The limits that keep a daemon left running for weeks bounded, whatever its clients do. */
export interface HttpLimits {
  readonly bodyTimeoutMs: number;
  readonly maxConnections: number;
  readonly maxBodyBytesInFlight: number;
  readonly maxSessions: number;
}

type LimitKeys = 'bodyTimeoutMs' | 'maxConnections' | 'maxBodyBytesInFlight' | 'maxSessions';

/** The configured limits; a config built in code (tests) may leave them out. */
export function httpLimits(config: Partial<Pick<BridgeConfig, LimitKeys>>): HttpLimits {
  return {
    bodyTimeoutMs: config.bodyTimeoutMs ?? DEFAULTS.bodyTimeoutMs,
    maxConnections: config.maxConnections ?? DEFAULTS.maxConnections,
    maxBodyBytesInFlight: config.maxBodyBytesInFlight ?? DEFAULTS.maxBodyBytesInFlight,
    maxSessions: config.maxSessions ?? DEFAULTS.maxSessions,
  };
}

// node:http's own answers to requests it cannot parse, kept since a clientError listener replaces them.
const BAD_REQUEST = 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n';
const HEADERS_TOO_LARGE =
  'HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n';

/** Longest wait for a request's headers (shorter if `bodyTimeoutMs` is): they are a few hundred bytes. */
export const HEADERS_TIMEOUT_MS = 5000;

/**
 * Each open connection that no access-token guard has passed yet, pointing to the set of such
 * connections of its server. Only these are closed to make room at the connection cap.
 */
const unauthenticatedIn = new WeakMap<Socket, Set<Socket>>();

/**
 * A request on `socket` passed the access-token guard: the connection is the owner's, and the
 * connection cap never closes it to make room.
 */
export function markSocketAuthenticated(socket: Socket): void {
  unauthenticatedIn.get(socket)?.delete(socket);
  unauthenticatedIn.delete(socket);
}

export interface LimitedServerOptions {
  /**
   * An access-token guard marks the connections it lets through (`markSocketAuthenticated`).
   * Without one (`"auth": "none"`) every connection counts as authenticated.
   */
  readonly tokenRequired: boolean;
  /** Bytes a connection received and sent since the last call, after each response. */
  readonly onTraffic?: ((received: number, sent: number) => void) | undefined;
}

/**
 * The daemon's HTTP server with its limits:
 *
 * - `bodyTimeoutMs` is node:http's `requestTimeout`: the time to receive a request, headers and
 *   body. node:http stops the clock once the request is complete, so a GET event stream or a tool
 *   call that runs for an hour is not cut; only a client that stalls before its request is
 *   complete is (408, connection closed).
 * - `headersTimeout` (HEADERS_TIMEOUT_MS, 5 s): node:http counts it from the connection's start,
 *   or from the first byte of the next request on a kept-alive one, until the headers are in.
 *   Anyone who can reach the port can open connections; this bounds how long one that never
 *   gets to the access token holds its slot.
 * - `maxConnections`: at the cap, the oldest connection that has not passed the access token is
 *   closed to make room, so connections of other local users cannot lock the owner out. Only
 *   when every connection is authenticated is the newcomer refused: its request is answered 503
 *   and the connection closed; node:http drops those past twice the limit without an answer
 *   (file descriptors stay bounded whatever a client does).
 */
export function createLimitedServer(
  app: RequestListener,
  limits: Pick<HttpLimits, 'bodyTimeoutMs' | 'maxConnections'>,
  logger: Logger,
  options: LimitedServerOptions,
): Server {
  const { bodyTimeoutMs, maxConnections } = limits;
  const headersTimeoutMs = Math.min(HEADERS_TIMEOUT_MS, bodyTimeoutMs);
  const refusals = new RefusalLog(logger);
  const overLimit = new WeakSet<Duplex>();
  /** The response of the request a connection is on, to know whether an answer can still be written. */
  const responses = new WeakMap<Duplex, ServerResponse>();
  const open = new Set<Socket>();
  /** In the order they connected: the first is the one closed to make room. */
  const unauthenticated = new Set<Socket>();

  const server = createServer(
    {
      requestTimeout: bodyTimeoutMs,
      headersTimeout: headersTimeoutMs,
      // node:http checks the clocks this often (its default is 30 s: a 5 s limit would act at up to 35 s).
      connectionsCheckingInterval: Math.min(1000, Math.max(25, Math.floor(headersTimeoutMs / 10))),
    },
    (req, res) => {
      responses.set(req.socket, res);
      res.once('finish', () => {
        if (responses.get(req.socket) === res) responses.delete(req.socket);
        if (options.onTraffic) countTraffic(req.socket, options.onTraffic);
      });
      if (!overLimit.has(req.socket)) {
        app(req, res);
        return;
      }
      // The body is read (and dropped) first: an answer written while the client is still sending
      // can be lost to the reset the closing connection causes.
      req.resume();
      req.once('end', () => {
        sendHttpError(
          res,
          'TOO_MANY_CONNECTIONS',
          `mcp-bridge has ${maxConnections} connections open (its "maxConnections" limit); try again in a moment`,
          { retryAfterS: 1, details: { limit: maxConnections }, close: true },
        );
      });
    },
  );
  server.maxConnections = 2 * maxConnections;

  const forget = (socket: Socket) => {
    open.delete(socket);
    unauthenticated.delete(socket);
    unauthenticatedIn.delete(socket);
  };
  server.on('connection', (socket: Socket) => {
    while (open.size >= maxConnections) {
      const oldest = unauthenticated.values().next().value;
      if (oldest === undefined) break;
      forget(oldest);
      oldest.destroy();
      refusals.note(
        'TOO_MANY_CONNECTIONS',
        'connection limit reached: closing the oldest connections that have not sent the access token',
        { limit: maxConnections },
        'evicted',
      );
    }
    const over = open.size >= maxConnections;
    open.add(socket);
    if (options.tokenRequired) {
      unauthenticated.add(socket);
      unauthenticatedIn.set(socket, unauthenticated);
    }
    socket.once('close', () => forget(socket));
    if (over) {
      overLimit.add(socket);
      refusals.note(
        'TOO_MANY_CONNECTIONS',
        'connection limit reached with authenticated connections only: refusing new connections',
        { limit: maxConnections },
      );
    }
  });

  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
    const answered = responses.get(socket)?.headersSent === true;
    if (!socket.writable || answered || error.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    let answer = BAD_REQUEST;
    if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT' && !responses.has(socket)) {
      refusals.note(
        'HEADERS_TIMEOUT',
        'closing connections that did not send their request headers in time',
        {
          headersTimeoutMs,
        },
      );
      answer = rawHttpError(
        'HEADERS_TIMEOUT',
        `Request timeout: the request headers did not arrive within ${headersTimeoutMs} ms`,
        { details: { headersTimeoutMs } },
      );
    } else if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      refusals.note('BODY_TIMEOUT', 'closing connections that did not send their whole request in time', {
        bodyTimeoutMs,
      });
      answer = rawHttpError(
        'BODY_TIMEOUT',
        `Request timeout: the request (headers and body) did not arrive within ${bodyTimeoutMs} ms ("bodyTimeoutMs")`,
        { details: { bodyTimeoutMs } },
      );
    } else if (error.code === 'HPE_HEADER_OVERFLOW') {
      answer = HEADERS_TOO_LARGE;
    }
    // The connection is half-open (node:http allows that): it must be destroyed, not just ended.
    const destroy = setTimeout(() => socket.destroy(), 1000);
    destroy.unref();
    socket.end(answer, () => {
      clearTimeout(destroy);
      socket.destroy();
    });
  });

  return server;
}

/** What each connection had received and sent when its last response finished. */
const counted = new WeakMap<Socket, { read: number; written: number }>();

function countTraffic(socket: Socket, onTraffic: (received: number, sent: number) => void): void {
  const before = counted.get(socket) ?? { read: 0, written: 0 };
  const now = { read: socket.bytesRead, written: socket.bytesWritten };
  counted.set(socket, now);
  onTraffic(now.read - before.read, now.written - before.written);
}
