import { createServer, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { type BridgeConfig, DEFAULTS } from '../config/schema.js';
import type { Logger } from '../log.js';
import { RefusalLog, rawRefusal, sendRefusal } from './refusal.js';

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

/**
 * The daemon's HTTP server with its limits:
 *
 * - `bodyTimeoutMs` is node:http's `requestTimeout` (and `headersTimeout`): the time to receive a
 *   request, headers and body. node:http stops the clock once the request is complete, so a GET
 *   event stream or a tool call that runs for an hour is not cut; only a client that stalls before
 *   its request is complete is (408, connection closed).
 * - `maxConnections`: the connections past it are answered 503 and closed; node:http drops those
 *   past twice the limit without an answer (file descriptors stay bounded whatever a client does).
 */
export function createLimitedServer(
  app: RequestListener,
  limits: Pick<HttpLimits, 'bodyTimeoutMs' | 'maxConnections'>,
  logger: Logger,
): Server {
  const { bodyTimeoutMs, maxConnections } = limits;
  const refusals = new RefusalLog(logger);
  const overLimit = new WeakSet<Duplex>();
  /** The response of the request a connection is on, to know whether an answer can still be written. */
  const responses = new WeakMap<Duplex, ServerResponse>();
  let open = 0;

  const server = createServer(
    {
      requestTimeout: bodyTimeoutMs,
      headersTimeout: bodyTimeoutMs,
      // node:http checks the clocks this often (its default is 30 s: a 30 s limit would act at up to 60 s).
      connectionsCheckingInterval: Math.min(1000, Math.max(25, Math.floor(bodyTimeoutMs / 10))),
    },
    (req, res) => {
      responses.set(req.socket, res);
      res.once('finish', () => {
        if (responses.get(req.socket) === res) responses.delete(req.socket);
      });
      if (!overLimit.has(req.socket)) {
        app(req, res);
        return;
      }
      // The body is read (and dropped) first: an answer written while the client is still sending
      // can be lost to the reset the closing connection causes.
      req.resume();
      req.once('end', () => {
        sendRefusal(
          res,
          503,
          'TOO_MANY_CONNECTIONS',
          `mcp-bridge has ${maxConnections} connections open (its "maxConnections" limit); try again in a moment`,
          { retryAfterS: 1, details: { limit: maxConnections }, close: true },
        );
      });
    },
  );
  server.maxConnections = 2 * maxConnections;

  server.on('connection', (socket: Socket) => {
    open++;
    socket.once('close', () => {
      open--;
    });
    if (open > maxConnections) {
      overLimit.add(socket);
      refusals.note('TOO_MANY_CONNECTIONS', 'connection limit reached: refusing new connections', {
        limit: maxConnections,
      });
    }
  });

  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
    const answered = responses.get(socket)?.headersSent === true;
    if (!socket.writable || answered || error.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    let answer = BAD_REQUEST;
    if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      logger.debug({ bodyTimeoutMs }, 'closing a connection that did not send its whole request in time');
      answer = rawRefusal(
        408,
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
