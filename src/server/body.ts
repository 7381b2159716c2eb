import { STATUS_CODES } from 'node:http';
import type { Request, RequestHandler, Response } from 'express';
import { errorMessage } from '../errors.js';
import { MAX_JSON_DEPTH, nestedDeeperThan } from '../json-depth.js';
import { sendHttpError } from './http-error.js';
import type { RefusalLog } from './refusal.js';

/**
 * Bytes of request bodies in flight at once, counted from the request's arrival until its response
 * has ended: a body is held several times over while it is parsed and handed to the SDK (100
 * concurrent 4 MB bodies took the daemon to 2 GB), and a call keeps its arguments until it ends.
 */
export class BodyBudget {
  private inFlight = 0;

  constructor(
    private readonly limit: number,
    private readonly maxBodyBytes: number,
    private readonly refusals: RefusalLog,
  ) {}

  get bytesInFlight(): number {
    return this.inFlight;
  }

  /** Middleware before the body parser: reserves the body's bytes, or answers 503. */
  readonly reserve: RequestHandler = (req, res, next) => {
    // The hot path reserved it already before handing the request on.
    if (readingBody.has(req)) {
      next();
      return;
    }
    readingBody.add(req);
    const bytes = this.bytesOf(req);
    if (bytes === 0) {
      next();
      return;
    }
    // One body always fits: a limit below maxBodyBytes must not refuse every large body.
    if (this.inFlight > 0 && this.inFlight + bytes > this.limit) {
      this.refusals.note(
        'BODY_BYTES_IN_FLIGHT',
        'request bodies in flight at their limit: refusing new ones',
        {
          limit: this.limit,
        },
      );
      const message = `mcp-bridge is busy: ${this.inFlight} bytes of request bodies are being handled, and this one (${bytes} bytes) would pass the ${this.limit}-byte limit ("maxBodyBytesInFlight"); send it again in a moment`;
      // The body is read and dropped (never held) before the answer: a client told "Connection:
      // close" while it is still sending gets EPIPE instead of the 503 (seen with 4 MB bodies).
      req.resume();
      req.once('end', () =>
        sendHttpError(res, 'BODY_BYTES_IN_FLIGHT', message, {
          retryAfterS: 1,
          details: { limit: this.limit },
        }),
      );
      return;
    }
    this.inFlight += bytes;
    res.once('close', () => {
      this.inFlight -= bytes;
    });
    next();
  };

  /**
   * The announced length of a body sent as is; the whole allowance when the size is unknown
   * (chunked) or may grow (compressed), since the parser then reads up to maxBodyBytes.
   */
  private bytesOf(req: Request): number {
    const length = req.headers['content-length'];
    const chunked = req.headers['transfer-encoding'] !== undefined;
    if (length === undefined && !chunked) return 0;
    const encoding = (req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
    if (chunked || encoding !== 'identity') return this.maxBodyBytes;
    const bytes = Number(length);
    // The parser refuses an announced length over maxBodyBytes (413) without reading the body.
    return Number.isFinite(bytes) && bytes <= this.maxBodyBytes ? bytes : 0;
  }
}

/** Middleware after the body parser: 400 for a body nested deeper than MAX_JSON_DEPTH. */
export const refuseDeepJson: RequestHandler = (req, res, next) => {
  if (!nestedDeeperThan(req.body, MAX_JSON_DEPTH)) {
    next();
    return;
  }
  const id = (req.body as { id?: unknown }).id;
  sendHttpError(
    res,
    'JSON_TOO_DEEP',
    `Invalid Request: the JSON body is nested more than ${MAX_JSON_DEPTH} levels deep`,
    { details: { limit: MAX_JSON_DEPTH }, id: typeof id === 'string' || typeof id === 'number' ? id : null },
  );
};

/**
 * Requests that reached the body parser (it runs right after `BodyBudget.reserve`). A body that
 * does not decompress fails with zlib's own error, which body-parser gives a 400 but no `type`.
 */
const readingBody = new WeakSet<Request>();

/**
 * Answers a failure of the body parser (marked by body-parser with `type`), or another 4xx that
 * express raised (a path that does not decode, say) with its own status; returns false for any
 * other error, which the caller treats as a bug.
 */
export function answerBodyError(error: unknown, res: Response, maxBodyBytes: number): boolean {
  const { type, status, expose } = error as { type?: unknown; status?: unknown; expose?: unknown };
  if (type === 'request.aborted') {
    // The client went away (or the body timeout closed the connection): nobody is left to answer.
    res.end();
    return true;
  }
  if (type === 'entity.too.large') {
    sendHttpError(
      res,
      'BODY_TOO_LARGE',
      `Request body too large: the limit is ${maxBodyBytes} bytes (set "maxBodyBytes" in the config to change it)`,
      { details: { limit: maxBodyBytes } },
    );
    return true;
  }
  if (type === 'entity.parse.failed') {
    sendHttpError(
      res,
      'BODY_NOT_JSON',
      `Parse error: the request body is not valid JSON (${errorMessage(error)})`,
    );
    return true;
  }
  if (type === 'encoding.unsupported' || type === 'charset.unsupported') {
    sendHttpError(
      res,
      'UNSUPPORTED_ENCODING',
      `Unsupported request encoding: ${errorMessage(error)} (mcp-bridge reads identity, gzip, deflate and br bodies in UTF-8)`,
    );
    return true;
  }
  if (typeof status !== 'number' || status < 400 || status >= 500) return false;
  // A body shorter or longer than its Content-Length, or that does not decode as its
  // Content-Encoding says (zlib, brotli).
  if (type === 'request.size.invalid' || (type === undefined && readingBody.has(res.req))) {
    sendHttpError(
      res,
      'BODY_UNREADABLE',
      `Parse error: the request body cannot be read (${errorMessage(error)})`,
      {
        details: { contentEncoding: res.req.headers['content-encoding'] ?? 'identity' },
      },
    );
    return true;
  }
  // A 4xx message is about the request, meant for its client (http-errors' rule; the router's own
  // errors do not set `expose` at all).
  const reason = expose === false ? 'the request cannot be served' : errorMessage(error);
  sendHttpError(res, 'HTTP_REQUEST_INVALID', `${STATUS_CODES[status] ?? 'Client error'}: ${reason}`, {
    status,
  });
  return true;
}
