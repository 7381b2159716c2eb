import { once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import type { JSONRPCMessage, Transport } from '@modelcontextprotocol/client';
import { DEFAULTS } from '../config/schema.js';
import { BridgeError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { ChildGroupTracker } from './child-groups.js';
import {
  checkCwd,
  isWindows,
  outputTooLarge,
  type PipedChild,
  signalChild,
  spawnChild,
  spawnFailure,
} from './child-process.js';
import { shutdownChild } from './child-shutdown.js';
import { DepthScreen } from './deep-output.js';
import { deliverInOrder } from './deliver.js';
import { LineSplitter } from './line-splitter.js';

export interface ExitInfo {
  /** Exit code, or null when the child was killed by a signal. */
  readonly code: number | null;
  /** The signal that ended the child, if any. */
  readonly signal: NodeJS.Signals | null;
}

export interface StdioTransportOptions {
  /** Upstream name, used in every error message. */
  readonly name: string;
  /** Program to run, looked up on PATH. */
  readonly command: string;
  /** Its arguments. */
  readonly args: readonly string[];
  /** Variables added to the daemon's own environment. */
  readonly env: Readonly<Record<string, string>>;
  /** Working directory. */
  readonly cwd?: string | undefined;
  /** Each line the child writes to stderr. */
  readonly onStderrLine?: (line: string) => void;
  /** A stdout line that is not a JSON-RPC message (ignored, reported here). */
  readonly onGarbage?: (line: string) => void;
  /** Called once when the child has exited. */
  readonly onExit?: (exit: ExitInfo) => void;
  /** How long each shutdown step (stdin end, SIGTERM) may take before the next one. */
  readonly killGraceMs?: number;
  /** Longest stdout line (one JSON-RPC message); a longer one ends the connection. */
  readonly maxStdoutLineBytes?: number | undefined;
  /** Longest stderr line logged; a longer one is dropped (counted, never logged). */
  readonly maxStderrLineBytes?: number | undefined;
  /** Where notes about dropped stderr lines go. */
  readonly log?: Logger | undefined;
  /** Told about every process group this transport starts and sees gone. */
  readonly groups?: ChildGroupTracker | undefined;
}

/**
 * An SDK Transport over a child process's stdin/stdout, one JSON-RPC message per line. The child
 * leads its own process group so that shutdown reaches grandchildren started through npx, uvx or
 * a shell.
 */
export class StdioTransport implements Transport {
  onclose?: (() => void) | undefined;
  onerror?: ((error: Error) => void) | undefined;
  onmessage?: ((message: JSONRPCMessage) => void) | undefined;

  private child: PipedChild | undefined;
  private exited: Promise<ExitInfo> | undefined;
  private exitInfo: ExitInfo | undefined;
  private closing: Promise<void> | undefined;
  private closedNotified = false;
  private started = false;
  /** Resolves with the spawn error, or undefined once the child runs. */
  private spawning: Promise<Error | undefined> | undefined;
  private failed: BridgeError | undefined;
  private readonly depth: DepthScreen;

  constructor(private readonly options: StdioTransportOptions) {
    this.depth = new DepthScreen(options.name, options.log);
  }

  /** The child's pid while it runs. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /**
   * The SDK's version negotiation recognises a stdio transport by `stderr` and `pid`: a probe that
   * times out or ends the child then means "legacy server" instead of an outage. stderr itself is
   * consumed here, line by line.
   */
  get stderr(): null {
    return null;
  }

  /** How the child ended, once it has. */
  get exit(): ExitInfo | undefined {
    return this.exitInfo;
  }

  /** Why this transport ended the connection itself (the child broke the protocol), if it did. */
  get failure(): BridgeError | undefined {
    return this.failed;
  }

  async start(): Promise<void> {
    if (this.started) throw new Error('StdioTransport already started');
    this.started = true;
    const { name, command, cwd } = this.options;
    if (cwd !== undefined) await checkCwd(name, cwd);
    if (this.closing) throw this.notRunning('was stopped before it started');
    const spawned = spawnChild({
      command,
      args: this.options.args,
      env: this.options.env,
      cwd,
      onError: (error) => this.options.log?.debug({ err: errorMessage(error) }, 'upstream process error'),
    });
    if ('error' in spawned) throw spawnFailure(name, command, spawned.error);
    const { child } = spawned;
    this.child = child;
    if (child.pid && !isWindows) this.options.groups?.spawned(child.pid, name);
    this.exited = new Promise<ExitInfo>((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        this.options.onExit?.(this.exitInfo);
        resolve(this.exitInfo);
      });
    });
    this.spawning = spawned.spawned;
    const spawnError = await this.spawning;
    if (spawnError) {
      this.child = undefined;
      throw spawnFailure(name, command, spawnError);
    }
    this.readLines(child);
    void this.exited.then(async () => {
      // Let the last stdout lines drain, but never wait on a grandchild that keeps the pipe open.
      await Promise.race([once(child, 'close'), delay(200, undefined, { ref: false })]);
      this.notifyClosed();
    });
  }

  /** stdout: one JSON-RPC message per line. stderr: log lines. Both bounded in length. */
  private readLines(child: PipedChild): void {
    const maxStdout = this.options.maxStdoutLineBytes ?? DEFAULTS.maxStdoutLineBytes;
    const maxStderr = this.options.maxStderrLineBytes ?? DEFAULTS.maxStderrLineBytes;
    const stdout = new LineSplitter({
      maxLineBytes: maxStdout,
      onLine: (line) => this.receive(line),
      onOverflow: () => this.stopForLongLine(maxStdout),
    });
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stdout.on('end', () => stdout.end());
    const log = this.options.log;
    const stderr = new LineSplitter({
      maxLineBytes: maxStderr,
      onLine: (line) => {
        const text = line.toString('utf8');
        if (text.trim() !== '') this.options.onStderrLine?.(text);
      },
      // Only the size is logged: the content of such a line is most likely binary or a dump.
      onOverflow: () =>
        log?.warn(
          { stream: 'stderr', limit: maxStderr },
          'upstream is writing a stderr line longer than maxStderrLineBytes; dropping it',
        ),
      onDiscarded: (bytes) => log?.warn({ stream: 'stderr', bytes }, 'dropped an over-long stderr line'),
    });
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.stderr.on('end', () => stderr.end());
  }

  /**
   * A stdout line past the limit: the stream cannot be resynchronised (the line might still be a
   * message), so the connection ends and the upstream retries with backoff like after a crash.
   * The rest of the line is still read (and dropped), so the child never blocks on a full pipe.
   */
  private stopForLongLine(limit: number): void {
    if (this.failed) return;
    const { name } = this.options;
    this.failed = outputTooLarge(name, limit);
    this.options.log?.warn({ limit }, 'upstream stdout line too long; stopping the process');
    if (this.child) signalChild(this.child, 'SIGTERM');
    void this.close();
  }

  private notRunning(why: string): BridgeError {
    return new BridgeError('UPSTREAM_CLOSED', `upstream "${this.options.name}" ${why}`, {
      details: { upstream: this.options.name },
    });
  }

  async send(message: JSONRPCMessage): Promise<void> {
    const stdin = this.child?.stdin;
    if (!stdin?.writable || this.exitInfo) {
      throw new BridgeError(
        'UPSTREAM_CLOSED',
        `upstream "${this.options.name}": the process is not running`,
        {
          details: { upstream: this.options.name },
        },
      );
    }
    await new Promise<void>((resolve, reject) => {
      stdin.write(`${JSON.stringify(message)}\n`, (error) => {
        if (!error) return resolve();
        reject(
          new BridgeError(
            'UPSTREAM_CLOSED',
            `upstream "${this.options.name}": cannot write to the process (${error.message})`,
            {
              cause: error,
              details: { upstream: this.options.name },
            },
          ),
        );
      });
    });
  }

  /** Ends the child: stdin end, then SIGTERM, then SIGKILL to its whole process group. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutdown().finally(() => this.notifyClosed());
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    // A close that lands while the child is being spawned waits for the outcome, so a child that
    // did start is never left running.
    if (this.spawning && (await this.spawning)) return;
    const child = this.child;
    const exited = this.exited;
    if (!child || !exited) return;
    await shutdownChild(child, {
      exited,
      alreadyExited: this.exitInfo !== undefined,
      graceMs: this.options.killGraceMs ?? 2000,
      groups: this.options.groups,
    });
  }

  private receive(bytes: Buffer): void {
    if (this.failed) return;
    const line = bytes.toString('utf8');
    if (line.trim() === '') return;
    let message: unknown;
    try {
      message = JSON.parse(line);
    } catch {
      this.options.onGarbage?.(line);
      return;
    }
    if (
      typeof message !== 'object' ||
      message === null ||
      (message as { jsonrpc?: unknown }).jsonrpc !== '2.0'
    ) {
      this.options.onGarbage?.(line);
      return;
    }
    const { deliver, reply } = this.depth.screen(message as JSONRPCMessage);
    if (reply) this.send(reply).catch(() => {});
    if (!deliver) return;
    deliverInOrder(deliver, (m) => {
      try {
        this.onmessage?.(m);
      } catch (error) {
        this.onerror?.(error instanceof Error ? error : new Error(String(error)));
      }
    });
  }

  private notifyClosed(): void {
    if (this.closedNotified) return;
    this.closedNotified = true;
    this.onclose?.();
  }
}
