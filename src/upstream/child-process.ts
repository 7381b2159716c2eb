import { type ChildProcessByStdio, spawn } from 'node:child_process';
import { stat } from 'node:fs/promises';
import type { Readable, Writable } from 'node:stream';
import { BridgeError, errorMessage } from '../errors.js';

export const isWindows = process.platform === 'win32';

export type PipedChild = ChildProcessByStdio<Writable, Readable, Readable>;

export interface SpawnedChild {
  readonly child: PipedChild;
  /** Resolves with the spawn error, or undefined once the child runs. */
  readonly spawned: Promise<Error | undefined>;
}

/**
 * Spawns `command` with three pipes, as the leader of a new process group (POSIX), so shutdown
 * reaches grandchildren started through npx, uvx or a shell.
 *
 * This is node:child_process on purpose, not execa: when the daemon is out of file descriptors,
 * Node's spawn() returns a ChildProcess without stdio and emits 'error' on the next tick; execa 9
 * then throws synchronously ("subprocess.stdio is not iterable") before it has attached any
 * listener, and the ChildProcess it dropped emits an 'error' nobody listens to: an uncaught
 * exception that ends the daemon. Here the listener is attached before that tick, and stays
 * attached for the child's whole life (kill() can emit 'error' too).
 */
export function spawnChild(options: {
  readonly command: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly cwd?: string | undefined;
  /** Every later 'error' of the child (after it was spawned). */
  readonly onError: (error: Error) => void;
}): SpawnedChild | { readonly error: Error } {
  let child: PipedChild;
  try {
    child = spawn(options.command, [...options.args], {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: !isWindows,
      windowsHide: true,
    });
  } catch (error) {
    // ENOMEM and invalid arguments (e.g. a NUL byte in an env value) are thrown, not emitted.
    return { error: error instanceof Error ? error : new Error(String(error)) };
  }
  let settled = false;
  const spawned = new Promise<Error | undefined>((resolve) => {
    child.once('spawn', () => {
      settled = true;
      resolve(undefined);
    });
    child.on('error', (error) => {
      if (settled) return options.onError(error);
      settled = true;
      resolve(error);
    });
  });
  // Pipes that fail after the spawn (EPIPE on a child that exited, ECONNRESET) are reported by the
  // exit that follows; an 'error' without a listener would end the daemon.
  for (const stream of [child.stdin, child.stdout, child.stderr]) stream?.on('error', () => {});
  return { child, spawned };
}

/** The error an upstream reports when its child could not be started. */
export function spawnFailure(name: string, command: string, error: Error): BridgeError {
  const code = (error as NodeJS.ErrnoException).code;
  const details = { upstream: name, command, ...(code ? { errno: code } : {}) };
  if (code === 'ENOENT' || code === 'EACCES') {
    const why = code === 'ENOENT' ? 'not found' : 'cannot be run';
    return new BridgeError('COMMAND_NOT_FOUND', `upstream "${name}": command "${command}" ${why} (${code})`, {
      cause: error,
      details,
    });
  }
  const hint =
    code === 'EMFILE' || code === 'ENFILE'
      ? ' (the daemon is out of file descriptors: too many open connections, or `ulimit -n` is too low); retrying with backoff'
      : code === 'EAGAIN' || code === 'ENOMEM'
        ? ' (the system is out of processes or memory); retrying with backoff'
        : '';
  return new BridgeError(
    'SPAWN_FAILED',
    `upstream "${name}": cannot start "${command}": ${errorMessage(error)}${hint}`,
    { cause: error, details },
  );
}

/** Whether any process of group `pgid` is still alive. */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    // ESRCH: gone. EPERM: the id now belongs to someone else's group; not ours to wait for.
    return false;
  }
}

/** Signals a child's whole process group (POSIX) or the child itself (Windows). */
export function signalChild(child: PipedChild, signal: NodeJS.Signals): void {
  try {
    if (!isWindows && child.pid) process.kill(-child.pid, signal);
    else child.kill(signal);
  } catch {
    // already gone
  }
}

export async function checkCwd(name: string, cwd: string): Promise<void> {
  const info = await stat(cwd).catch(() => undefined);
  if (!info?.isDirectory()) {
    throw new BridgeError(
      'CWD_NOT_FOUND',
      `upstream "${name}": working directory "${cwd}" ${info ? 'is not a directory' : 'does not exist'}`,
      { details: { upstream: name, cwd } },
    );
  }
}

/** A stdout line past `maxStdoutLineBytes`: says which key raises the cap. */
export function outputTooLarge(name: string, limit: number): BridgeError {
  return new BridgeError(
    'UPSTREAM_OUTPUT_TOO_LARGE',
    `upstream "${name}" wrote a stdout line longer than ${formatBytes(limit)} (maxStdoutLineBytes); the process was stopped and will be restarted. If its messages really are that large, raise "maxStdoutLineBytes" in the config`,
    { details: { upstream: name, limit, key: 'maxStdoutLineBytes' } },
  );
}

function formatBytes(bytes: number): string {
  if (bytes >= 1024 * 1024 && bytes % (1024 * 1024) === 0) return `${bytes / (1024 * 1024)} MiB`;
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  return `${bytes} bytes`;
}
