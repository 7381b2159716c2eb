import { setTimeout as delay } from 'node:timers/promises';
import type { ChildGroupTracker } from './child-groups.js';
import { groupAlive, isWindows, type PipedChild, signalChild } from './child-process.js';

export interface ShutdownOptions {
  /** Settles once the child has exited. */
  readonly exited: Promise<unknown>;
  /** The child had already exited when the shutdown began: no signals for the leader. */
  readonly alreadyExited: boolean;
  /** How long each step (stdin end, SIGTERM) may take before the next one. */
  readonly graceMs: number;
  /** Told when the child's process group is gone. */
  readonly groups?: ChildGroupTracker | undefined;
}

/**
 * Ends a child and its process group: stdin end → grace → SIGTERM to the group → grace → SIGKILL;
 * then members that outlived the leader (a grandchild started through npx, uvx or a shell) get
 * SIGTERM, then SIGKILL; then the pipes are destroyed.
 */
export async function shutdownChild(child: PipedChild, options: ShutdownOptions): Promise<void> {
  const { exited, graceMs: grace } = options;
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

  if (!options.alreadyExited) {
    child.stdin.end();
    if (!(await waitExit(grace))) {
      signalChild(child, 'SIGTERM');
      if (!(await waitExit(grace))) {
        signalChild(child, 'SIGKILL');
        await waitExit(grace);
      }
    }
  }
  // The leader is gone; descendants that stayed in its group are not.
  if (!isWindows && child.pid && groupAlive(child.pid)) {
    signalChild(child, 'SIGTERM');
    const deadline = Date.now() + grace;
    while (groupAlive(child.pid) && Date.now() < deadline) await delay(25);
    if (groupAlive(child.pid)) {
      signalChild(child, 'SIGKILL');
      const killDeadline = Date.now() + grace;
      while (groupAlive(child.pid) && Date.now() < killDeadline) await delay(25);
    }
  }
  if (!isWindows && child.pid && !groupAlive(child.pid)) options.groups?.gone(child.pid);
  child.stdin.destroy();
  child.stdout.destroy();
  child.stderr.destroy();
}
