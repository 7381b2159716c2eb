import pRetry, { AbortError } from 'p-retry';
import { type EndReason, Generation } from './generation.js';
import { isRetryable } from './upstream-errors.js';
import type { BackoffOptions } from './upstream-types.js';

/** What one episode (one connection, from spawn until it drops) is given. */
export interface EpisodeContext {
  /** 1 for the first attempt of a streak of failures. */
  readonly attempt: number;
  /** This episode's generation: ended by the episode, by `invalidate`, or by `stop`. */
  readonly generation: Generation;
  /** Call once the connection is up: a drop after `stableAfterMs` then starts a fresh attempt budget. */
  readonly ready: () => void;
}

export interface SupervisorOptions {
  /**
   * One connection. Resolves when it ended on purpose (reconnect, stop); throws when it failed. A
   * throw after the generation ended `closed` and the connection was ready for `stableAfterMs`
   * counts as a success: the next attempt comes at once, with a fresh budget.
   */
  readonly episode: (context: EpisodeContext) => Promise<void>;
  readonly backoff?: BackoffOptions | undefined;
  readonly stableAfterMs?: number | undefined;
  /** A retryable failure: the next attempt follows after a delay. */
  readonly onBackoff: (attempt: number, error: unknown) => void;
  /** A failure retrying cannot fix: the supervisor waits for `retryNow()` (or `stop()`). */
  readonly onGiveUp: (error: unknown) => void;
}

const DEFAULT_BACKOFF: BackoffOptions = { minMs: 1000, maxMs: 60_000, factor: 2 };

/**
 * Runs episodes one after another: one pRetry run (randomized exponential backoff) per streak of
 * failures, a wait for `retryNow()` after a failure retrying cannot fix, until `stop()`. Each
 * episode gets a new Generation; `invalidate` is the one way to end it from outside.
 */
export class Supervisor {
  private readonly abort = new AbortController();
  private count = 0;
  private generation: Generation | undefined;
  private running: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  /** A retryNow() that came while no wait was in progress: the next wait ends at once. */
  private wakeRequested = false;
  private wake: () => void = () => {};

  constructor(private readonly options: SupervisorOptions) {}

  /** The newest episode's generation (ended once that episode is over). */
  get current(): Generation | undefined {
    return this.generation;
  }

  get stopped(): boolean {
    return this.abort.signal.aborted;
  }

  /** Starts the episodes in the background; once. */
  start(): void {
    if (this.stopped) return;
    this.running ??= this.run();
  }

  /** Ends a waiting `failed`/`needs_auth` streak at once; otherwise remembered for the next such wait. */
  retryNow(): void {
    this.wakeRequested = true;
    this.wake();
  }

  /** Ends `generation` (default: the current one) for `reason`; false if that changed nothing. */
  invalidate(reason: EndReason, generation: Generation | undefined = this.generation): boolean {
    return generation?.end(reason) ?? false;
  }

  /** Ends the current generation and every retry; resolves when the last episode has returned. */
  stop(reason: Error = new Error('stopped')): Promise<void> {
    if (!this.stopping) {
      this.abort.abort(reason);
      this.invalidate({ kind: 'stopped' });
      this.wake();
      this.stopping = this.running ?? Promise.resolve();
    }
    return this.stopping;
  }

  private async run(): Promise<void> {
    const backoff = this.options.backoff ?? DEFAULT_BACKOFF;
    const signal = this.abort.signal;
    while (!signal.aborted) {
      try {
        // One pRetry run per streak of failures; an episode that was stable returns normally, so
        // the next run starts with a fresh attempt budget.
        await pRetry((attempt) => this.episode(attempt), {
          retries: Number.POSITIVE_INFINITY,
          factor: backoff.factor,
          minTimeout: backoff.minMs,
          maxTimeout: backoff.maxMs,
          randomize: true,
          signal,
          onFailedAttempt: ({ error, attemptNumber }) => {
            if (signal.aborted || !isRetryable(error)) return;
            this.options.onBackoff(attemptNumber, error);
          },
          shouldRetry: ({ error }) => isRetryable(error),
        });
      } catch (error) {
        if (signal.aborted) return;
        this.options.onGiveUp(error);
        // Until a login (or a stop) wakes it; a wake-up that came while failing is not lost.
        if (!this.wakeRequested) {
          await new Promise<void>((resolve) => {
            this.wake = resolve;
          });
        }
        this.wake = () => {};
        this.wakeRequested = false;
      }
    }
  }

  private async episode(attempt: number): Promise<void> {
    if (this.stopped) throw new AbortError('stopped');
    const generation = new Generation(++this.count);
    this.generation = generation;
    let readyAt: number | undefined;
    try {
      await this.options.episode({
        attempt,
        generation,
        ready: () => {
          readyAt = Date.now();
        },
      });
    } catch (error) {
      const stable =
        generation.ended?.kind === 'closed' &&
        readyAt !== undefined &&
        Date.now() - readyAt >= (this.options.stableAfterMs ?? 30_000);
      if (!stable) throw error;
    } finally {
      // Whatever ended the episode, its continuations are stale from now on.
      generation.end({ kind: 'failed' });
    }
  }
}
