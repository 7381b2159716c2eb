import type { BridgeError } from '../errors.js';

/** Why a generation (one connection attempt of an upstream) ended. */
export type EndReason =
  /** On purpose, to connect again at once (the server forgot our HTTP session): no backoff, no error. */
  | { readonly kind: 'reconnect' }
  /** The grant is gone: calls cut off by the close report `error`, and the upstream waits for a login. */
  | { readonly kind: 'auth'; readonly error: BridgeError }
  /** The connection closed by itself (crash, exit, missed keepalives, the server hung up). */
  | { readonly kind: 'closed' }
  /** Start-up failed or timed out, or the episode ended without saying why. */
  | { readonly kind: 'failed' }
  /** The upstream is stopping. */
  | { readonly kind: 'stopped' };

export type Ended = EndReason & { readonly generation: number };

/**
 * A later reason replaces an earlier one only when it ranks higher: a stop overrides everything
 * (nothing is retried), a lost grant overrides a plain close (the close was its consequence).
 */
const RANK: Readonly<Record<EndReason['kind'], number>> = {
  reconnect: 0,
  closed: 0,
  failed: 0,
  auth: 1,
  stopped: 2,
};

/**
 * One connection attempt. Every continuation of that attempt holds its Generation: it is stale
 * once `ended` is set, and `ended` says why. Ending a generation runs its cleanups once (timers,
 * keepalive, the transport) and aborts its `signal`.
 */
export class Generation {
  private reason: Ended | undefined;
  private lostGrant: BridgeError | undefined;
  private readonly controller = new AbortController();
  private readonly cleanups = new Set<() => void>();

  constructor(readonly id: number) {}

  get ended(): Ended | undefined {
    return this.reason;
  }

  /**
   * The error of a lost grant that ended this generation, even if a stop came after it and now
   * ranks first: calls it cut off report the login they need, not "closed".
   */
  get authError(): BridgeError | undefined {
    return this.lostGrant;
  }

  get live(): boolean {
    return this.reason === undefined;
  }

  /** Aborted when this generation ends. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Ends this generation (or gives a higher-ranked reason to an ended one); false if nothing changed. */
  end(reason: EndReason): boolean {
    const previous = this.reason;
    if (reason.kind === 'auth' && previous?.kind !== 'stopped') this.lostGrant ??= reason.error;
    if (previous && RANK[previous.kind] >= RANK[reason.kind]) return false;
    this.reason = { ...reason, generation: this.id };
    if (previous) return true;
    const cleanups = [...this.cleanups];
    this.cleanups.clear();
    for (const cleanup of cleanups) {
      // One failing cleanup must not keep the others (the transport's close) from running.
      try {
        cleanup();
      } catch {}
    }
    this.controller.abort(new Error(`connection ${this.id} ended (${reason.kind})`));
    return true;
  }

  /** Runs `cleanup` when this generation ends (at once if it has); returns the function that cancels it. */
  onEnd(cleanup: () => void): () => void {
    if (this.reason) {
      cleanup();
      return () => {};
    }
    this.cleanups.add(cleanup);
    return () => this.cleanups.delete(cleanup);
  }
}
