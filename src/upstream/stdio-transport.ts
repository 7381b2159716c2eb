import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import type { JSONRPCMessage, Transport } from '@modelcontextprotocol/client';
import { execa } from 'execa';
import { BridgeError, errorMessage } from '../errors.js';

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

  constructor(private readonly options: StdioTransportOptions) {}

  /** The child's pid while it runs. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** How the child ended, once it has. */
  get exit(): ExitInfo | undefined {
    return this.exitInfo;
  }

  async start(): Promise<void> {
    if (this.child) throw new Error('StdioTransport already started');
    const { name, command } = this.options;
    const subprocess = execa(command, [...this.options.args], {
      cwd: this.options.cwd,
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
    // execa's promise settles with the result (reject: false); we watch the ChildProcess events.
    subprocess.catch(() => {});
    this.child = subprocess;

    try {
      await Promise.race([
        once(subprocess, 'spawn'),
        once(subprocess, 'error').then(([error]) => Promise.reject(error)),
      ]);
    } catch (error) {
      this.child = undefined;
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        throw new BridgeError(
          'COMMAND_NOT_FOUND',
          `upstream "${name}": command "${command}" not found (ENOENT)`,
          {
            cause: error,
            details: { upstream: name, command },
          },
        );
      }
      if (code === 'EACCES' || code === 'ENOTDIR') {
        throw new BridgeError(
          'COMMAND_NOT_FOUND',
          `upstream "${name}": command "${command}" cannot be run (${code})`,
          {
            cause: error,
            details: { upstream: name, command },
          },
        );
      }
      throw new BridgeError(
        'SPAWN_FAILED',
        `upstream "${name}": cannot start "${command}": ${errorMessage(error)}`,
        {
          cause: error,
          details: { upstream: name, command },
        },
      );
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

    this.exited = new Promise<ExitInfo>((resolve) => {
      subprocess.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        this.options.onExit?.(this.exitInfo);
        resolve(this.exitInfo);
      });
    });
    void this.exited.then(async () => {
      // Let the last stdout lines drain, but never wait on a grandchild that keeps the pipe open.
      await Promise.race([once(subprocess, 'close'), delay(200)]);
      this.notifyClosed();
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
    const child = this.child;
    const exited = this.exited;
    if (!child || !exited) return;
    const grace = this.options.killGraceMs ?? 2000;
    const waitExit = (ms: number) => Promise.race([exited.then(() => true), delay(ms).then(() => false)]);

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
    try {
      this.onmessage?.(message as JSONRPCMessage);
    } catch (error) {
      this.onerror?.(error instanceof Error ? error : new Error(String(error)));
    }
  }

  private notifyClosed(): void {
    if (this.closedNotified) return;
    this.closedNotified = true;
    this.onclose?.();
  }
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}
