/**
 * The activity log: one JSON line per tool call, prompt get and resource read, in its own
 * size-rotated file beside the main log, plus the last few in memory for the status page.
 */
import pino from 'pino';
import { DEFAULT_MAX_BYTES, redactValue } from './redact-secrets.js';

export { defaultActivityPath } from './activity-files.js';

export interface ActivityClient {
  readonly name?: string;
  readonly version?: string;
  /** The MCP session id (streamable HTTP), when there is one. */
  readonly session?: string;
  /** The JSON-RPC id of the request, for sessionless (2026-07-28) clients and for matching the main log. */
  readonly requestId?: string | number;
  readonly era: '2025' | '2026-07-28';
  readonly listener: 'local' | 'public';
}

export interface ActivityEntry {
  readonly time: string;
  readonly kind: 'tool' | 'prompt' | 'resource';
  readonly client: ActivityClient;
  /** The name the client used (a resource's URI for a read). */
  readonly name: string;
  /** The upstream's own name for it, when the bridge renamed it. */
  readonly original?: string;
  /** Absent when the call never got as far as an upstream (unknown name). */
  readonly upstream?: string;
  readonly durationMs: number;
  readonly outcome: 'ok' | 'tool_error' | 'error';
  /** The bridge's error code (src/errors.ts) or the JSON-RPC code, for outcome `error`. */
  readonly errorCode?: string;
  readonly resultBytes?: number;
  /** Only with `recordArguments`, redacted. */
  readonly arguments?: unknown;
  readonly result?: unknown;
}

/** What a caller hands to `record`: the time is taken there, arguments and result are raw. */
export type ActivityRecord = Omit<ActivityEntry, 'time' | 'arguments' | 'result'> & {
  readonly arguments?: unknown;
  readonly result?: unknown;
};

export interface ActivityLogOptions {
  /** The path as given to pino-roll; files are `<stem>.<n><ext>` beside it (see activity-files.ts). */
  readonly file: string;
  /** Record (redacted) arguments and results; off by default in the config. */
  readonly recordArguments: boolean;
  /** Values to replace verbatim, asked for on every record so a config reload takes effect. */
  readonly knownSecrets: () => readonly string[];
  /** Rotate after this size (pino-roll size string, default 10m). */
  readonly rotateSize?: string;
  /** Rotated files to keep beside the current one (default 5). */
  readonly keepFiles?: number;
  /** Arguments or a result larger than this are recorded as a `[not recorded: …]` note (default 64 KiB). */
  readonly maxRecordedBytes?: number;
  /** Told about a failure of the writer (an unwritable directory); recording goes on in memory. */
  readonly onError?: (error: Error) => void;
}

/** What stands for arguments or a result when redacting them failed. */
export const REDACTION_FAILED = '[not recorded: redaction failed]';

/** Lines wait at most this long for the ones that follow them (see `queue`). */
const FLUSH_MS = 100;
const FLUSH_ENTRIES = 500;

type Untimed = Omit<ActivityEntry, 'time'>;
/** An entry with the epoch ms it was recorded at; its ISO `time` is made when it is read. */
interface Recorded {
  readonly ms: number;
  readonly entry: Untimed;
}

const timed = ({ ms, entry }: Recorded): ActivityEntry => ({ time: new Date(ms).toISOString(), ...entry });

/** How many entries `recent` keeps. */
export const RECENT_LIMIT = 200;

export class ActivityLog {
  private closing: Promise<void> | undefined;
  /** The worker is gone (ended, or failed): waiting for its 'close' would wait forever. */
  private streamClosed = false;
  /** The writer failed (an unwritable directory): entries go on into memory only. */
  private writerFailed = false;
  private pending: Recorded[] = [];
  /** The last RECENT_LIMIT entries, a circular buffer (`ringNext` is where the next one goes). */
  private readonly ring: (Recorded | undefined)[] = new Array(RECENT_LIMIT);
  private ringNext = 0;
  private ringSize = 0;
  private flushTimer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly options: ActivityLogOptions,
    private readonly stream: ReturnType<typeof pino.transport>,
  ) {
    stream.once('close', () => {
      this.streamClosed = true;
    });
    // Once: a dead worker fails every later write, and one report says it all.
    stream.once('error', (error: Error) => {
      this.writerFailed = true;
      this.report(error);
    });
    stream.on('error', () => {});
  }

  /**
   * Starts the writer: pino-roll in a worker thread (pino.transport), as for the main log, so a
   * slow disk never holds up a call. Files are created with mode 0600 (sonic-boom's `mode`; a file that exists
   * keeps its mode): arguments, even redacted, are the user's business.
   */
  static open(options: ActivityLogOptions): ActivityLog {
    const stream = pino.transport({
      target: 'pino-roll',
      options: {
        file: options.file,
        size: options.rotateSize ?? '10m',
        // Across restarts too: a log that may hold arguments should not grow without end.
        limit: { count: Math.max(1, options.keepFiles ?? 5), removeOtherLogFiles: true },
        mkdir: true,
        mode: 0o600,
      },
    });
    return new ActivityLog(options, stream);
  }

  /**
   * Writes one entry. Cheap and safe on the hot path: no I/O here (the line goes to the worker),
   * arguments and result are dropped unless `recordArguments` and are otherwise redacted within
   * a size cap; pass `resultBytes` (see json-size.ts) rather than leaving it to be measured, which
   * this never does. Never throws.
   */
  record(input: ActivityRecord): void {
    if (this.closing) return;
    try {
      // Only the clock is read now: the ISO time and the JSON line are made in batches (flush,
      // recent), where they cost a fraction of what they cost one call at a time.
      const recorded: Recorded = { ms: Date.now(), entry: this.entryOf(input) };
      this.ring[this.ringNext] = recorded;
      this.ringNext = (this.ringNext + 1) % RECENT_LIMIT;
      this.ringSize = Math.min(this.ringSize + 1, RECENT_LIMIT);
      if (!this.writerFailed) this.queue(recorded);
    } catch (error) {
      this.report(error);
    }
  }

  /**
   * Lines go to the worker in batches, at most FLUSH_MS after the first: one write per line woke
   * the worker thread for every call, which cost more CPU (~0.3 ms a call) than the call itself.
   */
  private queue(recorded: Recorded): void {
    this.pending.push(recorded);
    if (this.pending.length >= FLUSH_ENTRIES) this.flush();
    else if (!this.flushTimer) {
      this.flushTimer = setTimeout(() => this.flush(), FLUSH_MS);
      this.flushTimer.unref();
    }
  }

  private flush(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.pending.length === 0) return;
    // Straight to the transport, not through a pino logger: the entry is the whole line (its own
    // time, no level, pid or hostname), which pino cannot write without a level.
    let lines = '';
    for (const recorded of this.pending) {
      try {
        lines += `${JSON.stringify(timed(recorded))}\n`;
      } catch (error) {
        // A value JSON cannot write (a BigInt from a bug) loses its line, not the others.
        this.report(error);
      }
    }
    this.pending = [];
    if (!this.writerFailed && !this.streamClosed) this.stream.write(lines);
  }

  private entryOf(input: ActivityRecord): Untimed {
    const { arguments: args, result, ...rest } = input;
    const entry: Untimed = rest;
    if (!this.options.recordArguments || (args === undefined && result === undefined)) return entry;
    try {
      const known = this.options.knownSecrets();
      const maxBytes = this.options.maxRecordedBytes ?? DEFAULT_MAX_BYTES;
      const redact = (value: unknown, knownBytes?: number) =>
        redactValue(value, known, { maxBytes, knownBytes });
      return {
        ...entry,
        ...(args !== undefined && { arguments: redact(args) }),
        ...(result !== undefined && { result: redact(result, rest.resultBytes) }),
      };
    } catch (error) {
      // The call still counts; only what could not be redacted is left out.
      this.report(error);
      return {
        ...entry,
        ...(args !== undefined && { arguments: REDACTION_FAILED }),
        ...(result !== undefined && { result: REDACTION_FAILED }),
      };
    }
  }

  private report(error: unknown): void {
    try {
      this.options.onError?.(error instanceof Error ? error : new Error(String(error)));
    } catch {
      // the reporter's own failure must not reach the call either
    }
  }

  /** The last `n` entries (at most RECENT_LIMIT), newest last. */
  recent(n: number = RECENT_LIMIT): readonly ActivityEntry[] {
    const count = Math.max(0, Math.min(n, this.ringSize));
    const entries: ActivityEntry[] = [];
    for (let i = count; i > 0; i--) {
      const recorded = this.ring[(this.ringNext - i + RECENT_LIMIT) % RECENT_LIMIT];
      if (recorded) entries.push(timed(recorded));
    }
    return entries;
  }

  /** Flushes what was recorded and stops the worker. Later `record` calls are ignored. */
  close(): Promise<void> {
    if (!this.closing) this.flush();
    this.closing ??= new Promise<void>((resolve) => {
      if (this.streamClosed) {
        resolve();
        return;
      }
      this.stream.once('close', () => resolve());
      this.stream.end();
    });
    return this.closing;
  }
}
