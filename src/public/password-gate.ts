import { createHash, timingSafeEqual } from 'node:crypto';

/** The owner password that guards the consent page of the public listener, with a global lockout. */

export type GateResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly reason: 'wrong'; readonly failuresLeft: number }
  | { readonly ok: false; readonly reason: 'locked'; readonly retryAfterS: number };

/** What `PasswordGate.unlock` cleared. */
export interface Unlocked {
  /** Seconds the lock had left, 0 when it was not locked. */
  readonly lockedForS: number;
  /** Wrong passwords of the window that were forgotten with it. */
  readonly failures: number;
}

export interface PasswordGateOptions {
  /** Wrong passwords allowed within `windowMs` before every try is refused (default 5). */
  readonly maxFailures?: number;
  /** Length of the sliding window, in milliseconds (default 15 minutes). */
  readonly windowMs?: number;
  /** Milliseconds clock; tests pass a fake one. */
  readonly now?: () => number;
}

const DEFAULT_MAX_FAILURES = 5;
const DEFAULT_WINDOW_MS = 15 * 60 * 1000;

// NFC on both sides: the same visible password may arrive composed from one keyboard (phones send NFC)
// and decomposed from another (macOS file names, some IMEs). Nothing else is changed: spaces are
// legitimate password characters, so there is no trimming.
function digest(password: string): Buffer {
  return createHash('sha256').update(password.normalize('NFC'), 'utf8').digest();
}

export class PasswordGate {
  readonly #expected: Buffer;
  readonly #maxFailures: number;
  readonly #windowMs: number;
  readonly #now: () => number;
  /** Times of the most recent failures, oldest first; never more than maxFailures. */
  readonly #failures: number[] = [];

  constructor(password: string, options: PasswordGateOptions = {}) {
    // An empty password would let anyone through with an empty form.
    if (password.length === 0) throw new RangeError('PasswordGate: the password must not be empty');
    const maxFailures = options.maxFailures ?? DEFAULT_MAX_FAILURES;
    const windowMs = options.windowMs ?? DEFAULT_WINDOW_MS;
    if (!Number.isInteger(maxFailures) || maxFailures < 1) {
      throw new RangeError('PasswordGate: maxFailures must be a positive integer');
    }
    if (!Number.isFinite(windowMs) || windowMs <= 0) {
      throw new RangeError('PasswordGate: windowMs must be a positive number');
    }
    // Only the digest is kept, so the plain password does not linger in this object.
    this.#expected = digest(password);
    this.#maxFailures = maxFailures;
    this.#windowMs = windowMs;
    this.#now = options.now ?? Date.now;
  }

  check(attempt: string): GateResult {
    const now = this.#now();
    this.#forgetOld(now);
    const retryAfterS = this.#retryAfterS(now);
    // Tries while locked are not counted: counting them would let anyone keep the owner locked out
    // forever by hammering the form, while not counting still caps a guesser at maxFailures per window.
    // The right password is refused too, or the lock would become an oracle for it.
    if (retryAfterS > 0) return { ok: false, reason: 'locked', retryAfterS };
    // Digests have a fixed length, so neither the comparison time nor an early exit reveals the length.
    if (timingSafeEqual(digest(attempt), this.#expected)) {
      // A success keeps earlier failures: "at most maxFailures wrong guesses per window" then holds
      // whatever the owner does, and the owner's own typos age out by themselves.
      return { ok: true };
    }
    this.#failures.push(now);
    if (this.#failures.length > this.#maxFailures) this.#failures.shift();
    return { ok: false, reason: 'wrong', failuresLeft: this.#maxFailures - this.#failures.length };
  }

  /** Seconds until tries are accepted again, 0 when not locked (for GET of the page). */
  lockedForS(): number {
    const now = this.#now();
    this.#forgetOld(now);
    return this.#retryAfterS(now);
  }

  /**
   * Forgets every recent failure, for the owner (`mcp-bridge connectors unlock`): tries while locked
   * do not extend the lock, but a guesser who comes back every 15 minutes would otherwise keep the
   * owner out until a restart. A guesser gets maxFailures new tries from it, as after a restart.
   */
  unlock(): Unlocked {
    const now = this.#now();
    this.#forgetOld(now);
    const cleared = { lockedForS: this.#retryAfterS(now), failures: this.#failures.length };
    this.#failures.length = 0;
    return cleared;
  }

  #forgetOld(now: number): void {
    while (this.#failures.length > 0 && this.#failures[0]! <= now - this.#windowMs) this.#failures.shift();
  }

  #retryAfterS(now: number): number {
    if (this.#failures.length < this.#maxFailures) return 0;
    // With the failures list full, the lock ends when its oldest entry leaves the window.
    const endsAt = this.#failures[0]! + this.#windowMs;
    return Math.max(1, Math.ceil((endsAt - now) / 1000));
  }
}
