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

/** How many entries `recent` keeps. */
export const RECENT_LIMIT = 200;

export class ActivityLog {
  private readonly ring: ActivityEntry[] = [];
  private closing: Promise<void> | undefined;
  /** The worker is gone (ended, or failed): waiting for its 'close' would wait forever. */
  private streamClosed = false;
  /** The writer failed (an unwritable directory): entries go on into memory only. */
  private writerFailed = false;

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
      const entry = this.entryOf(input);
      // Straight to the transport, not through a pino logger: the entry is the whole line (its own
      // time, no level, pid or hostname), which pino cannot write without a level.
      const line = `${JSON.stringify(entry)}\n`;
      this.ring.push(entry);
      if (this.ring.length > RECENT_LIMIT) this.ring.splice(0, this.ring.length - RECENT_LIMIT);
      if (!this.writerFailed) this.stream.write(line);
    } catch (error) {
      this.report(error);
    }
  }

  private entryOf(input: ActivityRecord): ActivityEntry {
    const { arguments: args, result, ...rest } = input;
    const entry: ActivityEntry = { time: new Date().toISOString(), ...rest };
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
    return n > 0 ? this.ring.slice(-n) : [];
  }

  /** Flushes what was recorded and stops the worker. Later `record` calls are ignored. */
  close(): Promise<void> {
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
