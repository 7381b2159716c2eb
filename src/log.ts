import pino, { type Logger } from 'pino';

export type { Logger } from 'pino';

/** Tokens and credentials never reach a log line, whatever object they ride in. */
export const REDACT_PATHS = [
  'authorization',
  'Authorization',
  '*.authorization',
  '*.Authorization',
  'headers.authorization',
  '*.headers.authorization',
  '*.headers.Authorization',
  'access_token',
  'refresh_token',
  '*.access_token',
  '*.refresh_token',
  '*.client_secret',
  'password',
  '*.password',
];

export interface CreateLoggerOptions {
  /** The log file; rotated by size through pino-roll. */
  readonly logPath: string;
  /** pino level name. */
  readonly level: string;
  /** Also print readable lines on stderr (when running in a terminal). */
  readonly pretty: boolean;
  /** Rotate after this many bytes (pino-roll size string). */
  readonly rotateSize?: string;
  /** Rotated files to keep. */
  readonly keepFiles?: number;
}

/**
 * The daemon's logger: JSON lines into a size-rotated file, plus pino-pretty on stderr when a person
 * is watching. Transports run in a worker thread so a slow disk never blocks request handling.
 */
export function createLogger(options: CreateLoggerOptions): Logger {
  const targets: pino.TransportTargetOptions[] = [
    {
      target: 'pino-roll',
      level: options.level,
      options: {
        file: options.logPath,
        size: options.rotateSize ?? '10m',
        limit: { count: options.keepFiles ?? 5 },
        mkdir: true,
      },
    },
  ];
  if (options.pretty) {
    targets.push({
      target: 'pino-pretty',
      level: options.level,
      options: { destination: 2, colorize: true, translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname' },
    });
  }
  const transport = pino.transport({ targets, dedupe: false });
  return pino(
    {
      level: options.level,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: { pid: process.pid },
    },
    transport,
  );
}

/** A logger that writes nothing, for tests and commands that must stay quiet. */
export function createSilentLogger(): Logger {
  return pino({ level: 'silent' });
}
