import type { ServerResponse } from 'node:http';
import type { SessionEventStore } from './event-store.js';

type Json = Record<string, unknown>;

/** A call still running after this long switches to an event stream, so clients see headers early. */
const JSON_WINDOW_MS = 1000;
/** The SDK's keepalive comment on a POST's event stream (DEFAULT_SSE_KEEP_ALIVE_MS). */
const KEEPALIVE_MS = 15_000;
/** The SDK transport's `retryInterval` for resumable sessions (legacy-sessions.ts). */
const RETRY_MS = 1000;

/** Where a resumable stream keeps its events, so a client that lost it can take it up again. */
export interface Resumable {
  readonly events: SessionEventStore;
  readonly streamId: string;
}

/**
 * The answer to one POST: a JSON body if the result is all there is, else the SDK transport's event
 * stream (same headers, `event: message` frames, keepalive comments). A resumable stream starts
 * with the SDK's priming event and gives every event an id stored in the session's event store;
 * `attach` continues it on the GET of a client that reconnects with Last-Event-ID.
 */
export class AnswerStream {
  private streaming = false;
  private done = false;
  private readonly window: NodeJS.Timeout;
  private keepalive: NodeJS.Timeout | undefined;

  constructor(
    private res: ServerResponse,
    private readonly sessionId: string,
    private readonly resumable?: Resumable,
  ) {
    this.window = setTimeout(() => this.open(), JSON_WINDOW_MS);
    this.window.unref();
  }

  /** Whether the client could take this stream up again (its events have ids). */
  get canResume(): boolean {
    return this.streaming && this.resumable !== undefined;
  }

  event(message: Json): void {
    if (this.done) return;
    this.open();
    const id = this.resumable
      ? `id: ${this.resumable.events.put(this.resumable.streamId, message as never)}\n`
      : '';
    this.write(`${id}event: message\ndata: ${JSON.stringify(message)}\n\n`);
  }

  finish(message: Json): void {
    if (this.done) return;
    if (this.streaming) {
      this.event(message);
      this.end();
      return;
    }
    this.stop();
    // Encoded once: its length and the bytes written come from the same pass.
    const body = Buffer.from(JSON.stringify(message));
    this.res.writeHead(200, {
      'Content-Type': 'application/json',
      'Content-Length': body.length,
      'mcp-session-id': this.sessionId,
    });
    this.res.end(body);
  }

  end(): void {
    if (this.done) return;
    this.open();
    this.stop();
    this.res.end();
  }

  stop(): void {
    this.done = true;
    clearTimeout(this.window);
    clearInterval(this.keepalive);
  }

  /**
   * Continues the stream on `res` (a GET with Last-Event-ID): the events after `lastEventId`,
   * then whatever comes next; an answer already complete is replayed and the response ended.
   */
  attach(res: ServerResponse, lastEventId: string): boolean {
    const found = this.resumable?.events.after(lastEventId);
    if (!found || found.streamId !== this.resumable?.streamId) return false;
    this.res = res;
    this.writeHead();
    for (const [id, message] of found.events)
      this.write(`id: ${id}\nevent: message\ndata: ${JSON.stringify(message)}\n\n`);
    if (this.done) res.end();
    return true;
  }

  private open(): void {
    if (this.streaming || this.done) return;
    this.streaming = true;
    clearTimeout(this.window);
    this.writeHead();
    if (this.resumable) {
      const id = this.resumable.events.put(this.resumable.streamId, {});
      this.write(`id: ${id}\nretry: ${RETRY_MS}\ndata: \n\n`);
    }
    this.keepalive = setInterval(() => this.write(': keepalive\n\n'), KEEPALIVE_MS);
    this.keepalive.unref();
  }

  private writeHead(): void {
    this.res.writeHead(200, {
      'Content-Type': 'text/event-stream',
      'Cache-Control': 'no-cache, no-transform',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
      'mcp-session-id': this.sessionId,
    });
    this.res.flushHeaders();
  }

  /** A client that went away leaves its events in the store, for when it comes back. */
  private write(text: string): void {
    if (!this.res.destroyed && !this.res.writableEnded) this.res.write(text);
  }
}
