import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { stat } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import type { JSONRPCMessage, Transport } from '@modelcontextprotocol/client';
import { BridgeError, errorMessage } from '../errors.js';
import { deliverInOrder } from './deliver.js';

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
}

const isWindows = process.platform === 'win32';

/**
 * An SDK Transport over a child process's stdin/stdout, one JSON-RPC message per line. The child
 * leads its own process group so that shutdown reaches grandchildren started through npx, uvx or
 * a shell.
 */
export class StdioTransport implements Transport {
  onclose?: (() => void) | undefined;
  onerror?: ((error: Error) => void) | undefined;
  onmessage?: ((message: JSONRPCMessage) => void) | undefined;

  private child: ChildProcess | undefined;
  private exited: Promise<ExitInfo> | undefined;
  private exitInfo: ExitInfo | undefined;
  private closing: Promise<void> | undefined;
  private closedNotified = false;
  private started = false;
  /** Resolves with the spawn error, or undefined once the child runs. */
  private spawning: Promise<Error | undefined> | undefined;

  constructor(private readonly options: StdioTransportOptions) {}

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

  async start(): Promise<void> {
    if (this.started) throw new Error('StdioTransport already started');
    this.started = true;
    const { name, command, cwd } = this.options;
    if (cwd !== undefined) await checkCwd(name, cwd);
    // Loaded on first spawn, not at daemon start: it is a large module graph, and the first
    // tools/list (answered from the cache) does not need it.
    const { execa } = await import('execa');
    if (this.closing) throw this.notRunning('was stopped before it started');
    const subprocess = execa(command, [...this.options.args], {
      cwd,
      env: { ...this.options.env },
      extendEnv: true,
      stdin: 'pipe',
      stdout: 'pipe',
      stderr: 'pipe',
      buffer: false,
      reject: false,
      stripFinalNewline: false,
      detached: !isWindows,
      cleanup: true,
      windowsHide: true,
    });
    this.child = subprocess;
    this.exited = new Promise<ExitInfo>((resolve) => {
      subprocess.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        this.options.onExit?.(this.exitInfo);
        resolve(this.exitInfo);
      });
    });
    // Spawn failures arrive as an 'error' event, or (when spawn throws synchronously, e.g. a bad
    // env value) only as a failed execa result; either way no 'spawn' event ever comes.
    this.spawning = Promise.race([
      // events.once rejects when 'error' fires first: that rejection is the spawn error.
      once(subprocess, 'spawn').then(
        () => undefined,
        (error: Error) => error,
      ),
      subprocess.then((result) =>
        result.failed ? ((result as { cause?: Error }).cause ?? new Error(result.message)) : undefined,
      ),
    ]);
    const spawnError = await this.spawning;
    if (spawnError) {
      this.child = undefined;
      throw spawnFailure(name, command, spawnError);
    }

    const stdout = subprocess.stdout!;
    const stderr = subprocess.stderr!;
    createInterface({ input: stdout, crlfDelay: Number.POSITIVE_INFINITY }).on('line', (line) =>
      this.receive(line),
    );
    createInterface({ input: stderr, crlfDelay: Number.POSITIVE_INFINITY }).on('line', (line) => {
      if (line.trim() !== '') this.options.onStderrLine?.(line);
    });
    // A child that exits while we write gives EPIPE; the exit handler reports it.
    subprocess.stdin?.on('error', () => {});
    stdout.on('error', () => {});
    stderr.on('error', () => {});
    void this.exited.then(async () => {
      // Let the last stdout lines drain, but never wait on a grandchild that keeps the pipe open.
      await Promise.race([once(subprocess, 'close'), delay(200, undefined, { ref: false })]);
      this.notifyClosed();
    });
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
    const grace = this.options.killGraceMs ?? 2000;
    const waitExit = async (ms: number) => {
      const timer = new AbortController();
      try {
        return await Promise.race([
          exited.then(() => true),
          delay(ms, false, { signal: timer.signal }).catch(() => false),
        ]);
      } finally {
        timer.abort();
      }
    };

    if (!this.exitInfo) {
      child.stdin?.end();
      if (!(await waitExit(grace))) {
        this.signal(child, 'SIGTERM');
        if (!(await waitExit(grace))) {
          this.signal(child, 'SIGKILL');
          await waitExit(grace);
        }
      }
    }
    // The leader is gone; descendants that stayed in its group are not.
    if (!isWindows && child.pid && groupAlive(child.pid)) {
      this.signal(child, 'SIGTERM');
      const deadline = Date.now() + grace;
      while (groupAlive(child.pid) && Date.now() < deadline) await delay(25);
      if (groupAlive(child.pid)) this.signal(child, 'SIGKILL');
    }
    child.stdin?.destroy();
    child.stdout?.destroy();
    child.stderr?.destroy();
  }

  private signal(child: ChildProcess, signal: NodeJS.Signals): void {
    try {
      if (!isWindows && child.pid) process.kill(-child.pid, signal);
      else child.kill(signal);
    } catch {
      // already gone
    }
  }

  private receive(line: string): void {
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
    deliverInOrder(message as JSONRPCMessage, (m) => {
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

async function checkCwd(name: string, cwd: string): Promise<void> {
  const info = await stat(cwd).catch(() => undefined);
  if (!info?.isDirectory()) {
    throw new BridgeError(
      'CWD_NOT_FOUND',
      `upstream "${name}": working directory "${cwd}" ${info ? 'is not a directory' : 'does not exist'}`,
      { details: { upstream: name, cwd } },
    );
  }
}

function spawnFailure(name: string, command: string, error: Error): BridgeError {
  const code = (error as NodeJS.ErrnoException).code;
  const details = { upstream: name, command };
  if (code === 'ENOENT') {
    return new BridgeError(
      'COMMAND_NOT_FOUND',
      `upstream "${name}": command "${command}" not found (ENOENT)`,
      {
        cause: error,
        details,
      },
    );
  }
  if (code === 'EACCES') {
    return new BridgeError(
      'COMMAND_NOT_FOUND',
      `upstream "${name}": command "${command}" cannot be run (EACCES)`,
      {
        cause: error,
        details,
      },
    );
  }
  return new BridgeError(
    'SPAWN_FAILED',
    `upstream "${name}": cannot start "${command}": ${errorMessage(error)}`,
    {
      cause: error,
      details,
    },
  );
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}
