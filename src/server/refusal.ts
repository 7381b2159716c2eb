import type { ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import { ThrottledLog } from '../throttled-log.js';

/**
 * Logs that a limit was reached, at most once per 10 s per limit: a flood of refused requests must
 * not become a flood of log lines.
 */
export class RefusalLog {
  private readonly log: ThrottledLog;

  constructor(logger: Logger) {
    this.log = new ThrottledLog(logger, 'refusedSinceLastReport');
  }

  /** `kind` tells apart notes of one code that say different things (each is throttled on its own). */
  note(code: ErrorCode, message: string, details: Record<string, unknown> = {}, kind = ''): void {
    this.log.warn(`${code} ${kind}`, { code, ...details }, message);
  }
}
