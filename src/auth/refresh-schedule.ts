import type { StoredTokens } from './token-store.js';

/** When tokens are refreshed, and how long a failed refresh waits before the next try. */

const MAX_LEAD_MS = 60_000;
const MIN_LEAD_MS = 500;
export const RETRY_MIN_MS = 1_000;
export const RETRY_MAX_MS = 60_000;
/** setTimeout fires at once for delays past 2^31-1 ms (~24.8 days). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * When to refresh: a quarter of the lifetime before expiry (at most a minute, at least half a
 * second), but never sooner than half the lifetime (and half a second) after the tokens were
 * obtained, so a server handing out tokens that live less than a round trip cannot cause a loop.
 */
export function refreshAt(tokens: StoredTokens): number {
  if (tokens.expiresAt === undefined) return Number.POSITIVE_INFINITY;
  const lifetime = Math.max(0, tokens.expiresAt - tokens.obtainedAt);
  const lead = Math.min(MAX_LEAD_MS, Math.max(MIN_LEAD_MS, lifetime / 4));
  return Math.max(tokens.expiresAt - lead, tokens.obtainedAt + Math.max(lifetime / 2, MIN_LEAD_MS));
}

/** The delay before a retry (±20 % so that upstreams sharing a server spread out). */
export function jittered(delayMs: number): number {
  return delayMs * (0.8 + Math.random() * 0.4);
}
