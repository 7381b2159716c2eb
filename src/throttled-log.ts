import type { Logger } from './log.js';

/** Shortest time between two log lines of the same kind. */
const INTERVAL_MS = 10_000;

/**
 * Warnings about something that can repeat as fast as a peer can make it happen (a refused
 * request, a dropped message): at most one line per `key` every 10 s, with the number of times it
 * happened since the last line. A flood of bad input must not become a flood of log lines.
 */
export class ThrottledLog {
  private readonly last = new Map<string, { at: number; since: number }>();

  constructor(
    private readonly logger: Logger,
    /** The field that counts what happened since the last line. */
    private readonly countField = 'sinceLastReport',
  ) {}

  warn(key: string, fields: Record<string, unknown>, message: string): void {
    const now = Date.now();
    const entry = this.last.get(key);
    if (entry && now - entry.at < INTERVAL_MS) {
      entry.since++;
      return;
    }
    this.last.set(key, { at: now, since: 0 });
    this.logger.warn({ ...fields, [this.countField]: entry?.since ?? 0 }, message);
  }
}
