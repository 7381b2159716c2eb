import { SdkError, SdkErrorCode } from '@modelcontextprotocol/client';

/**
 * The timeout of one upstream call: it restarts on progress and stands still while the upstream
 * waits for the client (an elicitation may wait for a person for minutes). On expiry the call's
 * signal aborts with the SDK's own timeout error, so it is reported like any other timeout.
 */
export class CallClock {
  private readonly controller = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private waiting = 0;
  private readonly stopOuter: () => void;

  readonly signal: AbortSignal;

  constructor(
    private readonly timeoutMs: number,
    outer: AbortSignal | undefined,
  ) {
    this.signal = this.controller.signal;
    const onOuterAbort = () => this.controller.abort(outer?.reason);
    if (outer?.aborted) onOuterAbort();
    outer?.addEventListener('abort', onOuterAbort, { once: true });
    this.stopOuter = () => outer?.removeEventListener('abort', onOuterAbort);
    this.restart();
  }

  /** Progress: the full timeout again. */
  restart(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.waiting > 0 || this.signal.aborted) return;
    this.timer = setTimeout(() => {
      this.controller.abort(
        new SdkError(SdkErrorCode.RequestTimeout, `Request timed out after ${this.timeoutMs} ms`, {
          timeout: this.timeoutMs,
        }),
      );
    }, this.timeoutMs);
    this.timer.unref();
  }

  /** The clock stands still until `work` settles, then starts over. */
  async pauseWhile<T>(work: Promise<T>): Promise<T> {
    this.waiting++;
    clearTimeout(this.timer);
    try {
      return await work;
    } finally {
      this.waiting--;
      this.restart();
    }
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.stopOuter();
  }
}
