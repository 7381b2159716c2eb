import type { ServerResponse } from 'node:http';

type Json = Record<string, unknown>;

/** A call still running after this long switches to an event stream, so clients see headers early. */
const JSON_WINDOW_MS = 1000;
/** The SDK's keepalive comment on a POST's event stream (DEFAULT_SSE_KEEP_ALIVE_MS). */
const KEEPALIVE_MS = 15_000;

/**
 * The answer to one POST: a JSON body if the result is all there is, else the SDK transport's event
 * stream (same headers, `event: message` frames, keepalive comments).
 */
export class AnswerStream {
  private streaming = false;
  private done = false;
  private readonly window: NodeJS.Timeout;
  private keepalive: NodeJS.Timeout | undefined;

  constructor(
    private readonly res: ServerResponse,
    private readonly sessionId: string,
  ) {
    this.window = setTimeout(() => this.open(), JSON_WINDOW_MS);
    this.window.unref();
  }

  event(message: Json): void {
    if (this.done) return;
    this.open();
    this.res.write(`event: message\ndata: ${JSON.stringify(message)}\n\n`);
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

  private open(): void {
    if (this.streaming || this.done) return;
    this.streaming = true;
    clearTimeout(this.window);
    this.res.writeHead(200, {
      'Content-Type': 'text/event-stream',
      'Cache-Control': 'no-cache, no-transform',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
      'mcp-session-id': this.sessionId,
    });
    this.res.flushHeaders();
    this.keepalive = setInterval(() => this.res.write(': keepalive\n\n'), KEEPALIVE_MS);
    this.keepalive.unref();
  }
}
