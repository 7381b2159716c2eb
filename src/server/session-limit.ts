import type { ServerResponse } from 'node:http';
import type { Logger } from '../log.js';
import { sendHttpError } from './http-error.js';
import { RefusalLog } from './refusal.js';

export interface LimitedSession {
  /** Requests still open (a standalone GET stream counts). */
  readonly open: number;
  /** Epoch ms its last request closed. */
  readonly lastActive: number;
}

/**
 * `maxSessions`. At the limit, the least recently used session with no open request is closed
 * once it has been idle `evictIdleAfterMs`: clients that start a session per call and never send
 * DELETE (a CLI run per call) would otherwise lock everyone out until the 30-min idle timeout,
 * while a burst of initialize calls still meets 503.
 */
export class SessionLimit {
  /** Sessions between initialize and their id. */
  private starting = 0;
  private readonly refusals: RefusalLog;

  constructor(
    private readonly max: number,
    private readonly evictIdleAfterMs: number,
    private readonly logger: Logger,
  ) {
    this.refusals = new RefusalLog(logger);
  }

  /** Counts a session being created until the returned function is called (idempotent). */
  begin(): () => void {
    this.starting++;
    let counted = true;
    return () => {
      if (counted) this.starting--;
      counted = false;
    };
  }

  /**
   * Whether one more session may start: true when there is room, after `close`-ing the least
   * recently used idle session if need be; false after answering `res` with 503 and Retry-After.
   */
  admit<S extends LimitedSession>(
    sessions: ReadonlyMap<string, S>,
    close: (id: string, session: S) => void,
    res: ServerResponse,
    requestId: string | number | null,
  ): boolean {
    if (sessions.size + this.starting < this.max) return true;
    let oldest: [string, S] | undefined;
    for (const entry of sessions) {
      if (entry[1].open === 0 && (!oldest || entry[1].lastActive < oldest[1].lastActive)) oldest = entry;
    }
    const wait = oldest ? oldest[1].lastActive + this.evictIdleAfterMs - Date.now() : this.evictIdleAfterMs;
    if (oldest && wait <= 0) {
      this.logger.info(
        { session: oldest[0], maxSessions: this.max },
        'closing the least recently used idle session to make room for a new one',
      );
      close(...oldest);
      return true;
    }
    this.refusals.note('TOO_MANY_SESSIONS', 'session limit reached: refusing initialize', {
      limit: this.max,
    });
    sendHttpError(
      res,
      'TOO_MANY_SESSIONS',
      `mcp-bridge has ${this.max} sessions open (its "maxSessions" limit), all of them in use within the last ${Math.round(this.evictIdleAfterMs / 1000)} s; try again later, or end unused sessions with DELETE`,
      { retryAfterS: wait / 1000, details: { limit: this.max }, id: requestId },
    );
    return false;
  }
}
