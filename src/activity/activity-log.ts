/**
 * The activity log: one JSON line per tool call, prompt get and resource read, in its own
 * size-rotated file beside the main log, plus the last few in memory for the status page.
 */
import roll, { type RollStream } from 'pino-roll';
import { ActivityLine, isoTime } from './activity-line.js';
import { DEFAULT_MAX_BYTES, redactValue } from './redact-secrets.js';

export { defaultActivityPath } from './activity-files.js';

export interface ActivityClient {
  readonly name?: string;
  readonly version?: string;
  /** The MCP session id (streamable HTTP), when there is one. */
  readonly session?: string;
  readonly era: '2025' | '2026-07-28';
  readonly listener: 'local' | 'public';
  /** The JSON-RPC id of the request, for sessionless (2026-07-28) clients and for matching the main log. */
  readonly requestId?: string | number;
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

/** How many entries `recent` keeps. */
export const RECENT_LIMIT = 200;

export class ActivityLog {
  private closing: Promise<void> | undefined;
  /** The file's stream, once pino-roll has opened it. */
  private stream: RollStream | undefined;
  private opened: Promise<void> = Promise.resolve();
  /** The stream is gone (ended, or failed): waiting for its 'close' would wait forever. */
  private streamClosed = false;
  /** The writer failed (an unwritable directory): entries go on into memory only. */
  private writerFailed = false;
  /** Lines not yet handed to the writer, and how many. */
  private pending = '';
  private pendingCount = 0;
  private readonly line = new ActivityLine();
  /**
   * The last RECENT_LIMIT lines, a circular buffer (`ringNext` is where the next one goes). Lines,
   * not entries: one string per call outlives the young generation instead of an object graph.
   */
  private readonly ring: (string | undefined)[] = new Array(RECENT_LIMIT);
  private ringNext = 0;
  private ringSize = 0;
  private flushTimer: NodeJS.Timeout | undefined;

  private constructor(private readonly options: ActivityLogOptions) {}

  /**
   * Opens the file through pino-roll (size rotation, old files removed) in this thread: its
   * sonic-boom stream writes with fs.write on libuv's pool, so a slow disk never holds up a call,
   * and a batch every FLUSH_MS costs less than waking a worker thread for it (pino.transport).
   * Files are created with mode 0600 (sonic-boom's `mode`; a file that exists keeps its mode):
   * arguments, even redacted, are the user's business. Entries recorded before the file is open
   * wait for it.
   */
  static open(options: ActivityLogOptions): ActivityLog {
    const log = new ActivityLog(options);
    log.opened = roll({
      file: options.file,
      size: options.rotateSize ?? '10m',
      // Across restarts too: a log that may hold arguments should not grow without end.
      limit: { count: Math.max(1, options.keepFiles ?? 5), removeOtherLogFiles: true },
      mkdir: true,
      mode: 0o600,
    }).then(
      (stream) => log.attach(stream),
      (error: unknown) => log.fail(error),
    );
    return log;
  }

  private attach(stream: RollStream): void {
    this.stream = stream;
    stream.once('close', () => {
      this.streamClosed = true;
    });
    // Once: a failed file fails every later write, and one report says it all.
    stream.once('error', (error: Error) => this.fail(error));
    stream.on('error', () => {});
    this.flush();
  }

  private fail(error: unknown): void {
    if (this.writerFailed) return;
    this.writerFailed = true;
    this.pending = '';
    this.pendingCount = 0;
    this.report(error);
  }

  /**
   * Writes one entry. Cheap and safe on the hot path: no I/O here (lines are written in batches),
   * arguments and result are dropped unless `recordArguments` and are otherwise redacted within
   * a size cap; pass `resultBytes` (see json-size.ts) rather than leaving it to be measured, which
   * this never does. Never throws.
   */
  record(input: ActivityRecord): void {
    if (this.closing) return;
    try {
      const line = this.line.of(isoTime(Date.now()), this.entryOf(input));
      // Reading a character makes V8 flatten the line now, while the pieces it was joined from
      // are young: the ring keeps one string per call, not a tree of them into the old generation.
      line.charCodeAt(0);
      this.ring[this.ringNext] = line;
      this.ringNext = (this.ringNext + 1) % RECENT_LIMIT;
      this.ringSize = Math.min(this.ringSize + 1, RECENT_LIMIT);
      if (!this.writerFailed) this.queue(line);
    } catch (error) {
      // A value JSON cannot write (a BigInt from a bug) loses its entry, not the others.
      this.report(error);
    }
  }

  /**
   * Lines go to the worker in batches, at most FLUSH_MS after the first: one write per line woke
   * the worker thread for every call, which cost more CPU (~0.3 ms a call) than the call itself.
   */
  private queue(line: string): void {
    this.pending += line;
    this.pendingCount++;
    if (this.pendingCount >= FLUSH_ENTRIES) this.flush();
    else if (!this.flushTimer) {
      this.flushTimer = setTimeout(() => this.flush(), FLUSH_MS);
      this.flushTimer.unref();
    }
  }

  private flush(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    // Not open yet: the lines wait, and attach() flushes them.
    if (this.pendingCount === 0 || !this.stream) return;
    // Straight to the file, not through a pino logger: the entry is the whole line (its own time,
    // no level, pid or hostname), which pino cannot write without a level.
    const lines = this.pending;
    this.pending = '';
    this.pendingCount = 0;
    if (!this.writerFailed && !this.streamClosed) this.stream.write(lines);
  }

  /** Whether arguments and results are recorded: callers leave them out otherwise. */
  get recordsArguments(): boolean {
    return this.options.recordArguments;
  }

  private entryOf(input: ActivityRecord): Untimed {
    // Kept as it is when there is nothing to drop or redact: a copy per call showed in profiles.
    if (input.arguments === undefined && input.result === undefined) return input;
    const { arguments: args, result, ...rest } = input;
    const entry: Untimed = rest;
    if (!this.options.recordArguments) return entry;
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
      const line = this.ring[(this.ringNext - i + RECENT_LIMIT) % RECENT_LIMIT];
      if (line) entries.push(JSON.parse(line) as ActivityEntry);
    }
    return entries;
  }

  /** Flushes what was recorded and closes the file. Later `record` calls are ignored. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.opened;
      this.flush();
      const stream = this.stream;
      if (!stream || this.streamClosed) return;
      if (this.writerFailed) {
        // A stream that failed to open never closes by itself.
        stream.destroy();
        return;
      }
      await new Promise<void>((resolve) => {
        stream.once('close', () => resolve());
        stream.end();
      });
    })();
    return this.closing;
  }
}
